//! Customer import (issue 5) end to end, on SQLite and on PostgreSQL: a CSV file posted to
//! `POST /v1/import/customers` as an admin or manager; every validation code reported on its
//! row and column with nothing stored for bad rows; re-running a file changes nothing; a
//! changed row updates its customer; the owner's phone receives the customers at its next
//! sync; roles and tenants are kept apart; a 20,000-row file. The command line is tested in
//! `server/tests/import_cli.rs` (it needs the `fieldsync` binary).

use fieldsync_sync::Role;
use fieldsync_tests::{Harness, on_both_stores};
use serde_json::Value;
use std::collections::HashMap;

/// Posts `body` to the import with `query` (`""` or `"?a=b&…"`).
fn import(h: &Harness, token: &str, query: &str, body: &str) -> (u16, Value) {
    import_as(h, token, query, "text/csv", body.as_bytes())
}

fn import_as(h: &Harness, token: &str, query: &str, ctype: &str, body: &[u8]) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(format!("{}/v1/import/customers{query}", h.url))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", ctype)
        .send(body)
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The report's rows by row number.
fn rows(report: &Value) -> HashMap<u64, Value> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["row"].as_u64().expect("row"), r.clone()))
        .collect()
}

/// The codes and columns of a row's errors.
fn errors(row: &Value) -> Vec<(String, String)> {
    row["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or_default().to_owned(),
                        e["column"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn customers(h: &Harness, token: &str) -> Vec<Value> {
    let (status, list) = h.get("/v1/customers", Some(token));
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("list").clone()
}

/// acme: an admin, a manager with rep1 in the team, rep2 outside it, HR, a disabled rep;
/// other: a rep of another company.
fn people(h: &Harness) -> HashMap<&'static str, String> {
    let t = h.tenant("acme");
    let mut ids = HashMap::new();
    for (email, role, manager) in [
        ("admin@acme.test", Role::Admin, None),
        ("boss@acme.test", Role::Manager, None),
        ("rep1@acme.test", Role::FieldRep, Some("boss@acme.test")),
        ("rep2@acme.test", Role::FieldRep, None),
        ("hr@acme.test", Role::Hr, None),
        ("gone@acme.test", Role::FieldRep, None),
    ] {
        ids.insert(email, h.user(t, email, role, manager).as_string());
    }
    let gone = ids["gone@acme.test"].parse().expect("id");
    h.rt.block_on(h.store.set_user_disabled(t, gone, true))
        .expect("disable");
    let o = h.tenant("other");
    h.user(o, "rep@other.test", Role::FieldRep, None);
    ids
}

const HEADER: &str =
    "External ID,Company,Type,Phone,E-mail,Address,Lat,Lng,Radius,Tier,Status,Owner,Tags,Notes";

/// Per row number, the (code, column) of each error.
type Expected = Vec<(u64, Vec<(&'static str, &'static str)>)>;

/// A file with three good rows and one bad row per validation code (rows numbered as a
/// spreadsheet shows them; the header is row 1).
fn mixed_file() -> (String, Expected) {
    let long_name = "N".repeat(201);
    let many_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let lines = [
        // 2: everything set.
        "C-1,Acme Ltd,company,+86 28 1234 5678,buyer@acme.example,\"1 Road, Chengdu\",30.65,104.06,300,Gold,Active,rep1@acme.test,hvac; vip|hvac,Prefers mornings".to_owned(),
        // 3: a note over two lines (still one row).
        "C-2,Panda Hotels,,,,,,,,,,,,\"Line one\nline two\"".to_owned(),
        // 4: no External ID: keyed by name and phone.
        ",Chengdu Tea House,person,028 5555 0101,,,,,,,,rep2@acme.test,,".to_owned(),
        "C-5,,,,,,,,,,,,,".to_owned(),
        "C-6,Bad Mail,,,not-an-email,,,,,,,,,".to_owned(),
        "C-7,Bad Phone,,call me,,,,,,,,,,".to_owned(),
        "C-8,Far North,,,,,95,104,,,,,,".to_owned(),
        "C-9,Half Place,,,,,30.6,,,,,,,".to_owned(),
        "C-10,Bad Lng,,,,,30.6,east,,,,,,".to_owned(),
        "C-11,Tiny Radius,,,,,,,5,,,,,".to_owned(),
        "C-12,Platinum,,,,,,,,platinum,,,,".to_owned(),
        "C-13,Dormant,,,,,,,,,dormant,,,".to_owned(),
        "C-14,Robot,robot,,,,,,,,,,,".to_owned(),
        "C-15,Nobody's,,,,,,,,,,nobody@acme.test,,".to_owned(),
        "C-16,Other Tenant's,,,,,,,,,,rep@other.test,,".to_owned(),
        "C-17,HR's,,,,,,,,,,hr@acme.test,,".to_owned(),
        "C-18,Disabled's,,,,,,,,,,gone@acme.test,,".to_owned(),
        format!("C-19,{long_name},,,,,,,,,,,,"),
        format!("C-20,Tag Heap,,,,,,,,,,,{},", many_tags.join(";")),
        "C-1,Acme Again,,,,,,,,,,,,".to_owned(),
        "C-22,Spilled,,,,,,,,,,,,,extra".to_owned(),
        "C-23,Two Faults,,x,@,,,,,,,,,".to_owned(),
    ];
    let file = format!("{HEADER}\r\n{}\r\n", lines.join("\r\n"));
    let expected = vec![
        (5, vec![("missing_field", "Company")]),
        (6, vec![("invalid_email", "E-mail")]),
        (7, vec![("invalid_phone", "Phone")]),
        (8, vec![("invalid_latitude", "Lat")]),
        (9, vec![("incomplete_location", "Lng")]),
        (10, vec![("invalid_longitude", "Lng")]),
        (11, vec![("invalid_radius", "Radius")]),
        (12, vec![("invalid_tier", "Tier")]),
        (13, vec![("invalid_lifecycle", "Status")]),
        (14, vec![("invalid_customer_kind", "Type")]),
        (15, vec![("unknown_owner", "Owner")]),
        (16, vec![("unknown_owner", "Owner")]),
        (17, vec![("unknown_owner", "Owner")]),
        (18, vec![("unknown_owner", "Owner")]),
        (19, vec![("field_too_long", "Company")]),
        (20, vec![("too_many_tags", "Tags")]),
        (21, vec![("duplicate_row", "External ID")]),
        (22, vec![("too_many_cells", "")]),
        (
            23,
            vec![("invalid_phone", "Phone"), ("invalid_email", "E-mail")],
        ),
    ];
    (file, expected)
}

fn good_and_bad_rows_are_reported_and_only_good_rows_stored(h: Harness) {
    let ids = people(&h);
    let admin = h.token("acme", "admin@acme.test");
    let (file, expected) = mixed_file();

    // A dry run reports the same and stores nothing.
    let (status, dry) = import(&h, &admin, "?dry_run=true", &file);
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (dry["created"].as_u64(), dry["errors"].as_u64()),
        (Some(3), Some(19)),
        "{dry}"
    );
    assert!(
        customers(&h, &admin).is_empty(),
        "a dry run stored customers"
    );

    let (status, report) = import(&h, &admin, "", &file);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["total"], 22);
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["errors"], 19, "{report}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("19 rows have errors"),
        "{report}"
    );
    assert_eq!(report["mapping"]["name"], "Company");
    assert_eq!(report["mapping"]["lon"], "Lng");
    assert_eq!(report["mapping"]["external_id"], "External ID");
    let by_row = rows(&report);
    for r in [2, 3, 4] {
        assert_eq!(by_row[&r]["status"], "created", "row {r}: {}", by_row[&r]);
    }
    for (r, codes) in &expected {
        let row = &by_row[r];
        assert_eq!(row["status"], "error", "row {r}: {row}");
        assert!(
            row.get("customer_id").is_none(),
            "row {r} names a customer: {row}"
        );
        let want: Vec<(String, String)> = codes
            .iter()
            .map(|(c, col)| (c.to_string(), col.to_string()))
            .collect();
        assert_eq!(errors(row), want, "row {r}: {row}");
        for e in row["errors"].as_array().expect("errors") {
            assert!(e["message"].as_str().is_some_and(|m| m.len() > 10), "{e}");
        }
    }

    // Exactly the three good rows are stored, as the file says.
    let list = customers(&h, &admin);
    let mut names: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["Acme Ltd", "Chengdu Tea House", "Panda Hotels"]);
    let id = by_row[&2]["customer_id"].as_str().expect("id");
    let (status, acme) = h.get(&format!("/v1/customers/{id}"), Some(&admin));
    assert_eq!(status, 200, "{acme}");
    assert_eq!(acme["phone"], "+86 28 1234 5678");
    assert_eq!(acme["email"], "buyer@acme.example");
    assert_eq!(acme["address"], "1 Road, Chengdu");
    assert_eq!(
        (acme["lat"].as_f64(), acme["lon"].as_f64()),
        (Some(30.65), Some(104.06))
    );
    assert_eq!(acme["tier"], "gold");
    assert_eq!(acme["lifecycle"], "active");
    assert_eq!(acme["owner_id"], ids["rep1@acme.test"].as_str());
    assert_eq!(acme["tags"], serde_json::json!(["hvac", "vip"]));
    assert_eq!(acme["notes"], "Prefers mornings");
    let (_, record) = h.get(&format!("/v1/records/{id}"), Some(&admin));
    assert_eq!(
        record["record"]["visit_radius_m"].as_f64(),
        Some(300.0),
        "{record}"
    );
    let panda = list
        .iter()
        .find(|c| c["name"] == "Panda Hotels")
        .expect("panda");
    assert_eq!(panda["notes"], "Line one\nline two");
    assert_eq!(
        panda["owner_id"],
        ids["admin@acme.test"].as_str(),
        "the importer owns by default"
    );
    let tea = list
        .iter()
        .find(|c| c["name"] == "Chengdu Tea House")
        .expect("tea");
    assert_eq!(tea["customer_kind"], "person");
    assert_eq!(tea["owner_id"], ids["rep2@acme.test"].as_str());
}

fn rerun_changes_nothing_and_a_changed_row_updates(h: Harness) {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    let admin = h.token("acme", "admin@acme.test");
    let file = "Ref,Customer name,Tel,Email,Notes\n\
                R1,Acme Ltd,+49 30 1111,,first\n\
                ,Spree Bau,+49 30 2222,,second\n\
                ,Havel Holz,,info@havel.example,third\n";
    let (status, first) = import(&h, &admin, "", file);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["created"], 3, "{first}");
    let docs = |h: &Harness| h.rt.block_on(h.store.count_documents(t)).expect("count");
    assert_eq!(docs(&h), 3);

    let (status, again) = import(&h, &admin, "", file);
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["unchanged"].as_u64(), again["created"].as_u64()),
        (Some(3), Some(0)),
        "{again}"
    );
    for (a, b) in first["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .zip(again["rows"].as_array().expect("rows"))
    {
        assert_eq!(
            a["customer_id"], b["customer_id"],
            "the same row is the same customer"
        );
        assert_eq!(b["status"], "unchanged");
    }
    assert_eq!(docs(&h), 3, "re-running the file duplicated customers");
    assert_eq!(customers(&h, &admin).len(), 3);

    // A changed row updates its customer; the others stay unchanged.
    let changed = "Ref,Customer name,Tel,Email,Notes\n\
                   R1,Acme Ltd,+49 30 9999,,first\n\
                   ,Spree Bau,+49 30 2222,,second but longer\n\
                   ,Havel Holz,,info@havel.example,third\n";
    let (status, upd) = import(&h, &admin, "", changed);
    assert_eq!(status, 200, "{upd}");
    let by_row = rows(&upd);
    assert_eq!(by_row[&2]["status"], "updated", "{upd}");
    assert_eq!(by_row[&3]["status"], "updated", "{upd}");
    assert_eq!(by_row[&4]["status"], "unchanged", "{upd}");
    assert_eq!(docs(&h), 3);
    let id = by_row[&2]["customer_id"].as_str().expect("id");
    assert_eq!(id, first["rows"][0]["customer_id"].as_str().expect("id"));
    let (_, acme) = h.get(&format!("/v1/customers/{id}"), Some(&admin));
    assert_eq!(acme["phone"], "+49 30 9999");
    let (_, spree) = h.get(
        &format!(
            "/v1/customers/{}",
            by_row[&3]["customer_id"].as_str().expect("id")
        ),
        Some(&admin),
    );
    assert_eq!(spree["notes"], "second but longer");
    let (_, again) = import(&h, &admin, "", changed);
    assert_eq!(again["unchanged"], 3, "{again}");

    // The same data with other spellings: `;` separated, a name spaced differently,
    // the phone punctuated differently, the email in capitals, columns mapped explicitly.
    let respelt = "Kunde;Telefon;Mail;Ref;Bemerkung\n\
                   Acme Ltd;+49 30 9999;;R1;first\n\
                   Spree  Bau;+49 (30) 2222;;;second but longer\n\
                   Havel Holz;;INFO@havel.example;;third\n";
    let (status, same) = import(
        &h,
        &admin,
        "?map.name=Kunde&map.phone=Telefon&map.email=Mail&map.notes=Bemerkung",
        respelt,
    );
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["created"], 0, "{same}");
    assert_eq!(
        rows(&same)[&3]["status"],
        "updated",
        "the name's spacing is the file's to change"
    );
    assert_eq!(
        rows(&same)[&4]["status"],
        "updated",
        "so is the email's case"
    );
    assert_eq!(docs(&h), 3, "a respelt file duplicated customers");
}

fn the_owners_phone_receives_imported_customers(h: Harness) {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    h.user(t, "rep@acme.test", Role::FieldRep, None);
    h.user(t, "rep2@acme.test", Role::FieldRep, None);
    let phone = h.phone("acme", "rep@acme.test");
    let other = h.phone("acme", "rep2@acme.test");
    phone.sync().expect("first sync");
    other.sync().expect("first sync");
    assert!(phone.list_customers().expect("list").is_empty());

    let admin = h.token("acme", "admin@acme.test");
    let file =
        "Name,Phone,Lat,Lon\nAcme Ltd,+86 28 1234,30.65,104.06\nPanda Hotels,+86 28 5678,,\n";
    let (status, report) = import(&h, &admin, "?owner=rep@acme.test", file);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 2, "{report}");

    phone.sync().expect("sync");
    let mut names: Vec<String> = phone
        .list_customers()
        .expect("list")
        .into_iter()
        .map(|v| v.customer.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Acme Ltd", "Panda Hotels"]);
    other.sync().expect("sync");
    assert!(
        other.list_customers().expect("list").is_empty(),
        "another rep got them"
    );

    // A later change reaches the phone too.
    let changed =
        "Name,Phone,Lat,Lon\nAcme Ltd,+86 28 1234,30.66,104.07\nPanda Hotels,+86 28 5678,,\n";
    let (_, report) = import(&h, &admin, "?owner=rep@acme.test", changed);
    assert_eq!(report["updated"], 1, "{report}");
    phone.sync().expect("sync");
    let acme = phone
        .list_customers()
        .expect("list")
        .into_iter()
        .find(|v| v.customer.name == "Acme Ltd")
        .expect("acme");
    assert_eq!(acme.customer.location.map(|l| l.lat), Some(30.66));
}

fn who_may_import_and_whole_file_refusals(h: Harness) {
    people(&h);
    let rep = h.token("acme", "rep1@acme.test");
    let hr = h.token("acme", "hr@acme.test");
    let boss = h.token("acme", "boss@acme.test");
    let admin = h.token("acme", "admin@acme.test");
    let file = "Name,Owner\nAcme Ltd,rep1@acme.test\n";
    for token in [&rep, &hr] {
        let (status, body) = import(&h, token, "", file);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
    }

    // A manager assigns within the team only.
    let team = "Name,Owner\nMine,\nRep One's,rep1@acme.test\nRep Two's,rep2@acme.test\n";
    let (status, report) = import(&h, &boss, "", team);
    assert_eq!(status, 200, "{report}");
    let by_row = rows(&report);
    assert_eq!(by_row[&2]["status"], "created");
    assert_eq!(by_row[&3]["status"], "created");
    assert_eq!(
        errors(&by_row[&4]),
        [("owner_not_allowed".to_owned(), "Owner".to_owned())]
    );
    let (status, body) = import(&h, &boss, "?owner=rep2@acme.test", "Name\nX\n");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("owner_not_allowed")),
        "{body}"
    );

    // Another company's user is unknown here, as a default owner too.
    let (status, body) = import(&h, &admin, "?owner=rep@other.test", "Name\nX\n");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_owner")),
        "{body}"
    );

    // A manager may not change, through an import, a customer outside the team: refused by
    // the same rules as a push, on its row.
    let (_, made) = import(
        &h,
        &admin,
        "",
        "Ref,Name,Owner\nX-1,Outside,rep2@acme.test\n",
    );
    assert_eq!(made["created"], 1, "{made}");
    let (status, report) = import(&h, &boss, "", "Ref,Name\nX-1,Outside renamed\n");
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        errors(&rows(&report)[&2]),
        [("forbidden".to_owned(), String::new())],
        "{report}"
    );

    // Whole-file refusals store nothing.
    let before = customers(&h, &admin).len();
    let refusals: [(&str, &str, &[u8], u16, &str); 9] = [
        (
            "",
            "application/json",
            b"{\"name\":\"x\"}",
            415,
            "unsupported_media_type",
        ),
        (
            "?dryrun=1",
            "text/csv",
            b"Name\nX\n",
            400,
            "unknown_parameter",
        ),
        (
            "?dry_run=maybe",
            "text/csv",
            b"Name\nX\n",
            400,
            "invalid_query",
        ),
        ("", "text/csv", b"", 400, "empty_file"),
        ("", "text/csv", b"Name\n", 400, "empty_file"),
        (
            "",
            "text/csv",
            b"Phone,Email\n123,a@b.c\n",
            400,
            "no_name_column",
        ),
        (
            "?map.colour=Name",
            "text/csv",
            b"Name\nX\n",
            400,
            "unknown_field",
        ),
        (
            "?map.phone=Telephone",
            "text/csv",
            b"Name\nX\n",
            400,
            "unknown_column",
        ),
        ("", "text/csv", b"Name\n\"X\n", 400, "invalid_csv"),
    ];
    for (query, ctype, body, want_status, code) in refusals {
        let (status, answer) = import_as(&h, &admin, query, ctype, body);
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(code)),
            "{query} {answer}"
        );
        assert!(
            answer["message"].as_str().is_some_and(|m| m.len() > 10),
            "{answer}"
        );
    }
    let (status, answer) = import_as(&h, &admin, "", "text/csv", b"Name\n\xff\xfe\n");
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_encoding")),
        "{answer}"
    );
    let rows_over = format!("Name\n{}", "x\n".repeat(100_001));
    let (status, answer) = import(&h, &admin, "", &rows_over);
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("too_many_rows")),
        "{answer}"
    );
    assert_eq!(
        customers(&h, &admin).len(),
        before,
        "a refused file stored customers"
    );

    // The route is described, with its CSV body and query parameters.
    let (_, spec) = h.get("/openapi.json", None);
    let op = &spec["paths"]["/v1/import/customers"]["post"];
    assert!(
        op["requestBody"]["content"].get("text/csv").is_some(),
        "{op}"
    );
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(params, ["dry_run", "owner", "map.{field}"], "{op}");
}

fn a_large_file_imports_and_reimports(h: Harness) {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    for i in 0..5 {
        h.user(t, &format!("rep{i}@acme.test"), Role::FieldRep, None);
    }
    let admin = h.token("acme", "admin@acme.test");
    const N: usize = 20_000;
    let mut file = String::from("External ID,Company,Phone,Lat,Lng,Owner,Tags\n");
    for i in 0..N {
        file.push_str(&format!(
            "K{i},Customer {i},+86 28 {:04} {:04},{},{},rep{}@acme.test,bulk;n{}\n",
            i / 10_000,
            i % 10_000,
            20.0 + (i % 1000) as f64 / 100.0,
            100.0 + (i / 1000) as f64 / 10.0,
            i % 5,
            i % 7
        ));
    }
    let (status, report) = import(&h, &admin, "", &file);
    assert_eq!(status, 200, "{}", report["summary"]);
    assert_eq!(
        (report["created"].as_u64(), report["errors"].as_u64()),
        (Some(N as u64), Some(0)),
        "{}",
        report["summary"]
    );
    assert_eq!(
        h.rt.block_on(h.store.count_documents(t)).expect("count"),
        N as i64
    );
    let by_row = rows(&report);
    assert_eq!(by_row.len(), N);
    for i in [0usize, 7_777, N - 1] {
        let id = by_row[&(i as u64 + 2)]["customer_id"].as_str().expect("id");
        let (_, c) = h.get(&format!("/v1/customers/{id}"), Some(&admin));
        assert_eq!(c["name"], format!("Customer {i}").as_str());
        assert_eq!(
            c["phone"],
            format!("+86 28 {:04} {:04}", i / 10_000, i % 10_000).as_str()
        );
        assert_eq!(
            c["tags"],
            serde_json::json!(["bulk", format!("n{}", i % 7)])
        );
    }
    let rep3 = h.token("acme", "rep3@acme.test");
    assert_eq!(customers(&h, &rep3).len(), N / 5, "each rep owns a fifth");

    let (status, again) = import(&h, &admin, "", &file);
    assert_eq!(status, 200, "{}", again["summary"]);
    assert_eq!(
        again["unchanged"].as_u64(),
        Some(N as u64),
        "{}",
        again["summary"]
    );
    assert_eq!(
        h.rt.block_on(h.store.count_documents(t)).expect("count"),
        N as i64
    );
}

on_both_stores!(
    good_and_bad_rows_are_reported_and_only_good_rows_stored,
    rerun_changes_nothing_and_a_changed_row_updates,
    the_owners_phone_receives_imported_customers,
    who_may_import_and_whole_file_refusals,
    a_large_file_imports_and_reimports,
);
