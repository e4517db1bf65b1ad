//! Customer import (issue 5): a CSV file in, customers out, with a report for every row.
//!
//! The same code serves `fieldsync import customers FILE.csv` (main.rs, on the database) and
//! `POST /v1/import/customers` (http/import.rs). It runs in four steps:
//!
//! 1. **Read** the CSV (RFC 4180: quoted cells, doubled quotes, line breaks inside quotes; `,`,
//!    `;` or tab, whichever the header line uses; a UTF-8 byte-order mark is skipped).
//! 2. **Map** headers to customer fields: the caller's explicit mapping first, then common
//!    header names compared without case, spaces or punctuation ("E-mail", "Customer name",
//!    "Lng", "External ID", …; see [`Field::aliases`]).
//! 3. **Validate** every row with the same content rules phones and pushes use
//!    (`fieldsync_sync::rules`), plus what only the import knows: the owner's email, duplicate
//!    rows in the file. Every problem of a row is reported with its code, a sentence and the
//!    column, and a row with any problem stores nothing.
//! 4. **Write** the good rows through the store's push path, in batches, as ordinary Automerge
//!    changes made on the caller's behalf, so the rules, projections and phones' pulls all see
//!    them as they would a phone's edit.
//!
//! Re-running a file does not duplicate: each row has a key (its External ID, else its
//! normalised name with phone or email) recorded in `customer_import_keys` with the customer
//! it became. A known key updates that customer (only the columns the file has; `unchanged`
//! when nothing differs, and then nothing is pushed). A new key is recorded with the new
//! customer's id *before* the push that creates it, so an import stopped half-way and run
//! again creates the same ids, never second copies.

use crate::store::{PushItem, PushOutcome, Store, StoreError, User, UserDirectory};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::PushResult;
use fieldsync_sync::record::customer::{CustomerKind, Lifecycle, Tier};
use fieldsync_sync::{Caller, Customer, DeviceId, DocId, GeoPoint, Record, RecordKind, Rejection};
use fieldsync_sync::{Role, UserId, rules};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The largest file accepted: the server's request limit, so HTTP and the CLI agree.
pub const MAX_IMPORT_BYTES: usize = fieldsync_sync::protocol::MAX_REQUEST_BYTES;
/// The most data rows accepted in one file.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Rows per push: well under the push limit, and large enough that a big file is a few dozen
/// transactions rather than one per row.
const PUSH_BATCH: usize = 1_000;
/// An External ID may be this long.
const MAX_EXTERNAL_ID: usize = 200;

/// A customer field a column can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    ExternalId,
    Name,
    CustomerKind,
    Phone,
    Email,
    Address,
    Lat,
    Lon,
    VisitRadiusM,
    Tier,
    Lifecycle,
    Owner,
    Tags,
    Notes,
}

impl Field {
    pub const ALL: [Field; 14] = [
        Field::ExternalId,
        Field::Name,
        Field::CustomerKind,
        Field::Phone,
        Field::Email,
        Field::Address,
        Field::Lat,
        Field::Lon,
        Field::VisitRadiusM,
        Field::Tier,
        Field::Lifecycle,
        Field::Owner,
        Field::Tags,
        Field::Notes,
    ];

    /// The name used in mappings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::ExternalId => "external_id",
            Field::Name => "name",
            Field::CustomerKind => "customer_kind",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Address => "address",
            Field::Lat => "lat",
            Field::Lon => "lon",
            Field::VisitRadiusM => "visit_radius_m",
            Field::Tier => "tier",
            Field::Lifecycle => "lifecycle",
            Field::Owner => "owner",
            Field::Tags => "tags",
            Field::Notes => "notes",
        }
    }

    /// Header names that map to this field by default, normalised (see [`normalise_header`]).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::ExternalId => &[
                "externalid",
                "extid",
                "ref",
                "reference",
                "customerref",
                "customerid",
                "customerno",
                "customernumber",
                "accountno",
                "accountnumber",
            ],
            Field::Name => &[
                "name",
                "company",
                "companyname",
                "customer",
                "customername",
                "account",
                "accountname",
                "business",
                "businessname",
                "organisation",
                "organization",
            ],
            Field::CustomerKind => &["customerkind", "kind", "type", "customertype"],
            Field::Phone => &["phone", "tel", "telephone", "phonenumber", "mobile", "cell"],
            Field::Email => &["email", "emailaddress", "mail"],
            Field::Address => &["address", "street", "streetaddress", "fulladdress"],
            Field::Lat => &["lat", "latitude"],
            Field::Lon => &["lon", "lng", "long", "longitude"],
            Field::VisitRadiusM => &["visitradiusm", "visitradius", "radius", "radiusm"],
            Field::Tier => &["tier", "customertier", "class"],
            Field::Lifecycle => &["lifecycle", "status", "stage", "lifecyclestage"],
            Field::Owner => &[
                "owner",
                "owneremail",
                "rep",
                "repemail",
                "salesrep",
                "assignedto",
                "accountmanager",
            ],
            Field::Tags => &["tags", "tag", "labels"],
            Field::Notes => &["notes", "note", "comments", "comment", "remarks"],
        }
    }

    /// Parses a field name as written in a mapping (`external_id`, `Phone`, …).
    pub fn parse(name: &str) -> Option<Field> {
        let n = normalise_header(name);
        Field::ALL
            .into_iter()
            .find(|f| normalise_header(f.as_str()) == n)
    }
}

/// A header compared without case, spaces or punctuation: "E-mail" and "email" are one.
pub fn normalise_header(h: &str) -> String {
    h.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How to run an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Explicit mapping, `(field, header)`: overrides the default for that field. An empty
    /// header leaves the field unmapped (to ignore a column the defaults would pick up).
    pub map: Vec<(String, String)>,
    /// Owner (email) of new customers whose row names none; the importer when absent.
    pub default_owner: Option<String>,
    /// Validate and report only; store nothing.
    pub dry_run: bool,
}

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Created,
    Updated,
    Unchanged,
    Error,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Created => "created",
            RowStatus::Updated => "updated",
            RowStatus::Unchanged => "unchanged",
            RowStatus::Error => "error",
        }
    }
}

/// One problem of a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowError {
    pub code: String,
    pub message: String,
    /// The header of the column at fault, when one is.
    pub column: Option<String>,
}

/// The outcome of one data row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowReport {
    /// The row number a spreadsheet shows (the header is row 1).
    pub row: usize,
    pub status: RowStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<DocId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RowError>,
}

/// The whole import's answer.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// One sentence: what was stored.
    pub summary: String,
    /// Data rows (blank rows are skipped and not counted).
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: usize,
    /// field → the header it was read from.
    pub mapping: BTreeMap<&'static str, String>,
    /// Headers no field was read from.
    pub ignored_columns: Vec<String>,
    pub rows: Vec<RowReport>,
}

impl ImportReport {
    /// The rows with errors as CSV: `row,column,code,message`, one line per problem.
    pub fn errors_csv(&self) -> String {
        let mut out = String::from("row,column,code,message\n");
        for r in &self.rows {
            for e in &r.errors {
                let cells = [
                    r.row.to_string(),
                    e.column.clone().unwrap_or_default(),
                    e.code.clone(),
                    e.message.clone(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
        }
        out
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Why a whole import was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file or the options are unusable; `code` and a sentence say why.
    #[error("{}", .0.message)]
    Invalid(Rejection),
    /// The database failed. Batches pushed before it are stored; running the same file again
    /// finishes the import without duplicating.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(code: &str, message: impl Into<String>) -> ImportError {
    ImportError::Invalid(Rejection::new(code, message))
}

/// What an import reports while it runs.
pub enum Event<'a> {
    /// `done` of `total` data rows have their final status.
    Progress { done: usize, total: usize },
    /// A batch was stored (the server announces it to live phones).
    Pushed(&'a PushOutcome),
}

// ---- CSV ----

/// One CSV record: its row number (1-based, the header is row 1) and cells.
struct CsvRow {
    row: usize,
    cells: Vec<String>,
}

/// The delimiter the header line uses most: `,`, `;` or tab.
fn sniff_delimiter(text: &str) -> char {
    let mut counts = [(',', 0usize), (';', 0), ('\t', 0)];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            _ if !quoted => {
                for (d, n) in counts.iter_mut() {
                    if *d == c {
                        *n += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == ','))
        .map(|(d, _)| *d)
        .unwrap_or(',')
}

/// Splits CSV text into records. A quote inside an unquoted cell is kept as a character; an
/// unterminated quoted cell is an error naming the row it starts in.
fn parse_csv(text: &str, delim: char) -> Result<Vec<CsvRow>, ImportError> {
    let mut rows = Vec::new();
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut row = 1;
    let mut chars = text.chars().peekable();
    // Whether the current cell started with a quote and we are inside it.
    let mut quoted = false;
    // Whether anything (even an empty quoted cell) was read for the current record.
    let mut started = false;
    let mut quote_row = 0;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => {
                quoted = true;
                started = true;
                quote_row = row;
            }
            c if c == delim => {
                cells.push(std::mem::take(&mut cell));
                started = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if started || !cell.is_empty() {
                    cells.push(std::mem::take(&mut cell));
                }
                rows.push(CsvRow {
                    row,
                    cells: std::mem::take(&mut cells),
                });
                started = false;
                row += 1;
            }
            c => cell.push(c),
        }
    }
    if quoted {
        return Err(invalid(
            "invalid_csv",
            format!(
                "Row {quote_row} opens a quoted cell that never closes; check the quotes in that row."
            ),
        ));
    }
    if started || !cell.is_empty() {
        cells.push(cell);
        rows.push(CsvRow { row, cells });
    }
    Ok(rows)
}

// ---- Mapping ----

/// Which column (index, header) each mapped field is read from.
struct Mapping {
    columns: BTreeMap<Field, (usize, String)>,
    ignored: Vec<String>,
}

impl Mapping {
    fn resolve(headers: &[String], explicit: &[(String, String)]) -> Result<Mapping, ImportError> {
        let mut columns: BTreeMap<Field, (usize, String)> = BTreeMap::new();
        let mut unmapped: HashSet<Field> = HashSet::new();
        let mut taken: HashSet<usize> = HashSet::new();
        for (field_name, header) in explicit {
            let field = Field::parse(field_name).ok_or_else(|| {
                let names: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
                invalid(
                    "unknown_field",
                    format!(
                        "'{field_name}' is not a customer field; map one of: {}.",
                        names.join(", ")
                    ),
                )
            })?;
            if header.trim().is_empty() {
                unmapped.insert(field);
                columns.remove(&field);
                continue;
            }
            let want = header.trim();
            let at = headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(want))
                .or_else(|| {
                    let n = normalise_header(want);
                    headers.iter().position(|h| normalise_header(h) == n)
                })
                .ok_or_else(|| {
                    invalid(
                        "unknown_column",
                        format!(
                            "The mapping reads {} from the column '{want}', but the file has no such column; its columns are: {}.",
                            field.as_str(),
                            headers.join(", ")
                        ),
                    )
                })?;
            if let Some((f, _)) = columns.iter().find(|(f, (i, _))| *i == at && **f != field) {
                return Err(invalid(
                    "duplicate_mapping",
                    format!(
                        "The column '{}' is mapped to both {} and {}; map each column once.",
                        headers[at],
                        f.as_str(),
                        field.as_str()
                    ),
                ));
            }
            columns.insert(field, (at, headers[at].clone()));
            taken.insert(at);
        }
        for (i, h) in headers.iter().enumerate() {
            if taken.contains(&i) {
                continue;
            }
            let n = normalise_header(h);
            let field = Field::ALL.into_iter().find(|f| {
                f.aliases().contains(&n.as_str())
                    && !columns.contains_key(f)
                    && !unmapped.contains(f)
            });
            if let Some(f) = field {
                columns.insert(f, (i, h.clone()));
                taken.insert(i);
            }
        }
        if !columns.contains_key(&Field::Name) {
            return Err(invalid(
                "no_name_column",
                format!(
                    "No column holds the customer's name: name one 'Name' or 'Company', or map it (for example map.name=Company). The file's columns are: {}.",
                    headers.join(", ")
                ),
            ));
        }
        let ignored = headers
            .iter()
            .enumerate()
            .filter(|(i, h)| !taken.contains(i) && !h.trim().is_empty())
            .map(|(_, h)| h.clone())
            .collect();
        Ok(Mapping { columns, ignored })
    }

    fn header(&self, f: Field) -> Option<String> {
        self.columns.get(&f).map(|(_, h)| h.clone())
    }

    /// The trimmed cell of `f` in `cells`: `None` if the field is not mapped, `Some("")` if
    /// the cell is empty or missing.
    fn cell<'a>(&self, cells: &'a [String], f: Field) -> Option<&'a str> {
        self.columns
            .get(&f)
            .map(|(i, _)| cells.get(*i).map(|c| c.trim()).unwrap_or(""))
    }
}

// ---- Rows ----

/// What a valid row sets. The outer `Option` of a field is whether its column is mapped; for
/// optional fields an empty cell clears the value, for fields with a default (kind,
/// lifecycle) an empty cell keeps it.
#[derive(Clone, Debug, Default)]
struct Values {
    name: String,
    customer_kind: Option<CustomerKind>,
    phone: Option<Option<String>>,
    email: Option<Option<String>>,
    address: Option<Option<String>>,
    location: Option<Option<GeoPoint>>,
    visit_radius_m: Option<Option<f64>>,
    tier: Option<Option<Tier>>,
    lifecycle: Option<Lifecycle>,
    owner: Option<UserId>,
    tags: Option<Vec<String>>,
    notes: Option<String>,
}

impl Values {
    fn apply(&self, c: &mut Customer) {
        c.name = self.name.clone();
        if let Some(k) = self.customer_kind {
            c.customer_kind = k;
        }
        if let Some(v) = &self.phone {
            c.phone = v.clone();
        }
        if let Some(v) = &self.email {
            c.email = v.clone();
        }
        if let Some(v) = &self.address {
            c.address = v.clone();
        }
        if let Some(v) = self.location {
            c.location = v;
        }
        if let Some(v) = self.visit_radius_m {
            c.visit_radius_m = v;
        }
        if let Some(v) = self.tier {
            c.tier = v;
        }
        if let Some(v) = self.lifecycle {
            c.lifecycle = v;
        }
        if let Some(o) = self.owner {
            c.owner = o;
        }
        if let Some(t) = &self.tags {
            c.tags = t.clone();
        }
        if let Some(n) = &self.notes {
            c.notes = n.clone();
        }
    }
}

/// Runs the shared customer content rules on one value alone, so a problem is pinned to its
/// column and the import never disagrees with what a push would accept.
fn check_alone(set: impl FnOnce(&mut Customer)) -> Result<(), Rejection> {
    let mut c = Customer::new("-", UserId::new());
    set(&mut c);
    rules::check_customer(&c)
}

/// Reads `"30.65"` (or `"30,65"`, as files written with `;` often have it).
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let v: f64 = if s.contains(',') && !s.contains('.') {
        s.replace(',', ".").parse().ok()?
    } else {
        s.parse().ok()?
    };
    v.is_finite().then_some(v)
}

/// Who may own customers, by lower-case email: active users other than HR.
struct Owners<'a> {
    by_email: HashMap<String, &'a User>,
    caller: &'a Caller,
}

impl Owners<'_> {
    /// The owner an email names, or why it cannot be.
    fn find(&self, email: &str) -> Result<UserId, Rejection> {
        let key = email.trim().to_lowercase();
        let u = self
            .by_email
            .get(&key)
            .filter(|u| !u.disabled && u.role != Role::Hr)
            .ok_or_else(|| {
                Rejection::new(
                    "unknown_owner",
                    format!(
                        "'{email}' is not an active user of this company who can own customers."
                    ),
                )
            })?;
        if self.caller.role == Role::Manager
            && u.id != self.caller.user
            && u.manager != Some(self.caller.user)
        {
            return Err(Rejection::new(
                "owner_not_allowed",
                format!(
                    "{} is not in your team; a manager can assign customers only to themselves and their team.",
                    u.email
                ),
            ));
        }
        Ok(u.id)
    }
}

/// A row that passed validation.
struct Good {
    idx: usize,
    key: String,
    values: Values,
}

fn validate_row(
    row: &CsvRow,
    width: usize,
    map: &Mapping,
    owners: &Owners<'_>,
) -> Result<(String, Values), Vec<RowError>> {
    let mut errors = Vec::new();
    let col = |f: Field| map.header(f);
    let mut err = |r: Rejection, column: Option<String>| {
        errors.push(RowError {
            code: r.code,
            message: r.message,
            column,
        })
    };
    let cells = &row.cells;
    if cells.len() > width && cells[width..].iter().any(|c| !c.trim().is_empty()) {
        err(
            Rejection::new(
                "too_many_cells",
                format!(
                    "Row {} has {} cells but the header has {width} columns; a cell may hold an unquoted delimiter.",
                    row.row,
                    cells.len()
                ),
            ),
            None,
        );
    }
    let cell = |f: Field| map.cell(cells, f);
    let mut v = Values {
        name: cell(Field::Name).unwrap_or("").to_owned(),
        ..Values::default()
    };
    let name = v.name.clone();
    if let Err(r) = rules::check_customer(&Customer::new(name, UserId::new())) {
        err(r, col(Field::Name));
    }
    let text_opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    if let Some(s) = cell(Field::CustomerKind).filter(|s| !s.is_empty()) {
        match s.to_lowercase().parse::<CustomerKind>() {
            Ok(k) => v.customer_kind = Some(k),
            Err(r) => err(r, col(Field::CustomerKind)),
        }
    }
    if let Some(s) = cell(Field::Phone) {
        let p = text_opt(s);
        match check_alone(|c| c.phone = p.clone()) {
            Ok(()) => v.phone = Some(p),
            Err(r) => err(r, col(Field::Phone)),
        }
    }
    if let Some(s) = cell(Field::Email) {
        let e = text_opt(s);
        match check_alone(|c| c.email = e.clone()) {
            Ok(()) => v.email = Some(e),
            Err(r) => err(r, col(Field::Email)),
        }
    }
    if let Some(s) = cell(Field::Address) {
        let a = text_opt(s);
        match check_alone(|c| c.address = a.clone()) {
            Ok(()) => v.address = Some(a),
            Err(r) => err(r, col(Field::Address)),
        }
    }
    let (lat, lon) = (cell(Field::Lat), cell(Field::Lon));
    if lat.is_some() || lon.is_some() {
        let mut number = |s: Option<&str>, f: Field, code: &str, what: &str| -> Option<f64> {
            let s = s.unwrap_or("");
            if s.is_empty() {
                return None;
            }
            let n = parse_number(s);
            if n.is_none() {
                err(
                    Rejection::new(
                        code,
                        format!("'{s}' is not a {what} (a number of degrees)."),
                    ),
                    col(f),
                );
            }
            n
        };
        let la = number(lat, Field::Lat, "invalid_latitude", "latitude");
        let lo = number(lon, Field::Lon, "invalid_longitude", "longitude");
        let (lat_s, lon_s) = (lat.unwrap_or(""), lon.unwrap_or(""));
        match (la, lo) {
            (Some(lat), Some(lon)) => {
                let p = GeoPoint { lat, lon };
                match rules::check_point(&p, "location") {
                    Ok(()) => v.location = Some(Some(p)),
                    Err(r) => {
                        let f = if r.code == "invalid_latitude" {
                            Field::Lat
                        } else {
                            Field::Lon
                        };
                        err(r, col(f));
                    }
                }
            }
            (None, None) if lat_s.is_empty() && lon_s.is_empty() => v.location = Some(None),
            _ if lat_s.is_empty() != lon_s.is_empty() => err(
                Rejection::new(
                    "incomplete_location",
                    "A location needs both latitude and longitude; fill both cells or neither.",
                ),
                col(if lat_s.is_empty() {
                    Field::Lat
                } else {
                    Field::Lon
                }),
            ),
            _ => {}
        }
    }
    if let Some(s) = cell(Field::VisitRadiusM) {
        if s.is_empty() {
            v.visit_radius_m = Some(None);
        } else {
            let r = parse_number(s).ok_or_else(|| {
                Rejection::new(
                    "invalid_radius",
                    format!("'{s}' is not a visit radius (a number of metres, 100 to 3000)."),
                )
            });
            match r.and_then(|r| check_alone(|c| c.visit_radius_m = Some(r)).map(|()| r)) {
                Ok(r) => v.visit_radius_m = Some(Some(r)),
                Err(r) => err(r, col(Field::VisitRadiusM)),
            }
        }
    }
    if let Some(s) = cell(Field::Tier) {
        if s.is_empty() {
            v.tier = Some(None);
        } else {
            match s.to_lowercase().parse::<Tier>() {
                Ok(t) => v.tier = Some(Some(t)),
                Err(r) => err(r, col(Field::Tier)),
            }
        }
    }
    if let Some(s) = cell(Field::Lifecycle).filter(|s| !s.is_empty()) {
        match s.to_lowercase().parse::<Lifecycle>() {
            Ok(l) => v.lifecycle = Some(l),
            Err(r) => err(r, col(Field::Lifecycle)),
        }
    }
    if let Some(s) = cell(Field::Owner).filter(|s| !s.is_empty()) {
        match owners.find(s) {
            Ok(u) => v.owner = Some(u),
            Err(r) => err(r, col(Field::Owner)),
        }
    }
    if let Some(s) = cell(Field::Tags) {
        let mut tags: Vec<String> = s
            .split([';', '|'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        tags.sort();
        tags.dedup();
        match check_alone(|c| c.tags = tags.clone()) {
            Ok(()) => v.tags = Some(tags),
            Err(r) => err(r, col(Field::Tags)),
        }
    }
    if let Some(s) = cell(Field::Notes) {
        match check_alone(|c| c.notes = s.to_owned()) {
            Ok(()) => v.notes = Some(s.to_owned()),
            Err(r) => err(r, col(Field::Notes)),
        }
    }
    let external = cell(Field::ExternalId).unwrap_or("");
    if external.chars().count() > MAX_EXTERNAL_ID {
        err(
            Rejection::new(
                "field_too_long",
                format!("The External ID is longer than {MAX_EXTERNAL_ID} characters."),
            ),
            col(Field::ExternalId),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((row_key(external, &v), v))
}

/// The row's identity across imports: its External ID, else its name (case and spacing
/// ignored) with its phone's digits or its email.
fn row_key(external: &str, v: &Values) -> String {
    if !external.is_empty() {
        return format!("ext:{external}");
    }
    let name: Vec<String> = v.name.split_whitespace().map(str::to_lowercase).collect();
    let phone: String = v
        .phone
        .clone()
        .flatten()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let contact = if !phone.is_empty() {
        format!("tel:{phone}")
    } else {
        match v.email.clone().flatten() {
            Some(e) => format!("mail:{}", e.to_lowercase()),
            None => String::new(),
        }
    };
    format!("np:{}|{contact}", name.join(" "))
}

// ---- The import ----

/// Imports customers from `csv` on `caller`'s behalf. Row problems are in the report; an
/// `Err` means the file or options were refused as a whole (nothing stored) or the database
/// failed.
pub async fn import_customers(
    store: &dyn Store,
    caller: &Caller,
    csv: &[u8],
    opts: &ImportOptions,
    on_event: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<ImportReport, ImportError> {
    if !matches!(caller.role, Role::Admin | Role::Manager) {
        return Err(invalid(
            "forbidden",
            "Only admins and managers can import customers.",
        ));
    }
    if csv.len() > MAX_IMPORT_BYTES {
        return Err(invalid(
            "file_too_large",
            format!(
                "The file is larger than {} MiB; split it into smaller files.",
                MAX_IMPORT_BYTES >> 20
            ),
        ));
    }
    let text = std::str::from_utf8(csv).map_err(|e| {
        invalid(
            "invalid_encoding",
            format!(
                "The file is not UTF-8 text (bad byte at offset {}); save it as 'CSV UTF-8'.",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = parse_csv(text, sniff_delimiter(text))?.into_iter();
    let headers = records
        .next()
        .map(|r| r.cells)
        .filter(|h| h.iter().any(|c| !c.trim().is_empty()))
        .ok_or_else(|| {
            invalid(
                "empty_file",
                "The file is empty: it needs a header row and at least one customer.",
            )
        })?;
    let rows: Vec<CsvRow> = records
        .filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    if rows.is_empty() {
        return Err(invalid(
            "empty_file",
            "The file has a header row but no customers.",
        ));
    }
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(invalid(
            "too_many_rows",
            format!(
                "The file has {} rows; one import takes at most {MAX_IMPORT_ROWS}. Split it into smaller files.",
                rows.len()
            ),
        ));
    }
    let map = Mapping::resolve(&headers, &opts.map)?;

    let users = store.list_users(caller.tenant).await?;
    let dir = UserDirectory {
        users: users
            .iter()
            .map(|u| (u.id, (u.role, u.manager, u.disabled)))
            .collect(),
        projects: HashMap::new(),
    };
    let owners = Owners {
        by_email: users.iter().map(|u| (u.email.to_lowercase(), u)).collect(),
        caller,
    };
    let default_owner = match opts.default_owner.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => owners.find(e).map_err(ImportError::Invalid)?,
        _ => caller.user,
    };

    // Validate every row; later rows with an earlier row's key are errors.
    let total = rows.len();
    let mut report: Vec<RowReport> = rows
        .iter()
        .map(|r| RowReport {
            row: r.row,
            status: RowStatus::Error,
            customer_id: None,
            errors: Vec::new(),
        })
        .collect();
    let mut good: Vec<Good> = Vec::new();
    let mut first_row: HashMap<String, usize> = HashMap::new();
    for (idx, row) in rows.iter().enumerate() {
        match validate_row(row, headers.len(), &map, &owners) {
            Ok((key, values)) => {
                if let Some(first) = first_row.get(&key) {
                    let (what, column) = if key.starts_with("ext:") {
                        ("External ID", map.header(Field::ExternalId))
                    } else {
                        ("name and phone or email", map.header(Field::Name))
                    };
                    report[idx].errors.push(RowError {
                        code: "duplicate_row".into(),
                        message: format!(
                            "Row {} has the same {what} as row {first}; each customer may appear once in a file.",
                            row.row
                        ),
                        column,
                    });
                } else {
                    first_row.insert(key.clone(), row.row);
                    good.push(Good { idx, key, values });
                }
            }
            Err(errors) => report[idx].errors = errors,
        }
    }
    drop(rows);

    // What each good row becomes: a new customer, or a change (possibly none) to one an
    // earlier import made. A batch at a time, so only one batch's documents are in memory,
    // and the Automerge work runs off the async runtime.
    let mut done = report.len() - good.len();
    on_event(Event::Progress { done, total });
    let dir = std::sync::Arc::new(dir);
    let mut seen_ids: HashSet<DocId> = HashSet::new();
    // One device id per import: not any phone's, so every phone receives the changes.
    let device = DeviceId::new();
    let mut queue = good.into_iter().peekable();
    while queue.peek().is_some() {
        let chunk: Vec<Good> = queue.by_ref().take(PUSH_BATCH).collect();
        let keys: Vec<String> = chunk.iter().map(|g| g.key.clone()).collect();
        let known = store.import_keys(caller.tenant, &keys).await?;
        let ids: Vec<DocId> = known.values().copied().collect();
        let stored = store.customer_docs(caller.tenant, &ids).await?;
        let (who, d) = (caller.clone(), dir.clone());
        let planned: Vec<(usize, Result<Planned, Rejection>)> =
            tokio::task::spawn_blocking(move || {
                chunk
                    .iter()
                    .map(|g| {
                        let known = known.get(&g.key).copied();
                        (g.idx, plan(g, known, &stored, &who, default_owner, &d))
                    })
                    .collect()
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;

        let mut batch: Vec<Planned> = Vec::new();
        for (idx, planned) in planned {
            match planned {
                Ok(p) if !seen_ids.insert(p.id) => {
                    // Two keys that name one customer (possible only across differently keyed
                    // files): the first row wins.
                    report[idx].errors.push(RowError {
                        code: "duplicate_row".into(),
                        message: "Another row of this file is the same customer; each customer may appear once in a file.".into(),
                        column: map.header(Field::Name),
                    });
                    done += 1;
                }
                Ok(p) if p.changes.is_empty() => {
                    report[idx].status = RowStatus::Unchanged;
                    report[idx].customer_id = Some(p.id);
                    done += 1;
                }
                Ok(p) => {
                    report[idx].customer_id = Some(p.id);
                    if opts.dry_run {
                        report[idx].status = p.status;
                        done += 1;
                    } else {
                        batch.push(p);
                    }
                }
                Err(r) => {
                    let column = owner_column(&r.code, &map);
                    report[idx].errors.push(RowError {
                        code: r.code,
                        message: r.message,
                        column,
                    });
                    done += 1;
                }
            }
        }
        if batch.is_empty() {
            on_event(Event::Progress { done, total });
            continue;
        }

        // Record the keys of new customers first (see the module comment).
        let new_keys: Vec<(String, DocId)> = batch
            .iter()
            .filter(|p| p.reserve)
            .map(|p| (p.key.clone(), p.id))
            .collect();
        if !new_keys.is_empty() {
            let recorded = store.reserve_import_keys(caller.tenant, &new_keys).await?;
            batch.retain(|p| {
                if !p.reserve || recorded.get(&p.key) == Some(&p.id) {
                    return true;
                }
                let r = &mut report[p.idx];
                r.customer_id = recorded.get(&p.key).copied();
                r.errors.push(RowError {
                    code: "import_conflict".into(),
                    message: "Another import created this customer at the same moment; run this import again to update it.".into(),
                    column: None,
                });
                done += 1;
                false
            });
        }
        let items: Vec<PushItem> = batch
            .iter_mut()
            .map(|p| {
                PushItem::Apply(Incoming {
                    doc_id: p.id,
                    kind: RecordKind::Customer,
                    changes: std::mem::take(&mut p.changes),
                })
            })
            .collect();
        let out = store
            .push(caller, device, uuid::Uuid::now_v7(), items)
            .await?;
        on_event(Event::Pushed(&out));
        let results: HashMap<DocId, PushResult> = out
            .response
            .results
            .into_iter()
            .map(|r| (r.doc_id(), r))
            .collect();
        for p in &batch {
            let r = &mut report[p.idx];
            match results.get(&p.id) {
                Some(PushResult::Accepted { .. }) => r.status = p.status,
                Some(PushResult::Rejected { error, .. }) => r.errors.push(RowError {
                    code: error.code.clone(),
                    message: error.message.clone(),
                    column: owner_column(&error.code, &map),
                }),
                _ => r.errors.push(RowError {
                    code: "internal_error".into(),
                    message: "The server could not store this row; run the import again.".into(),
                    column: None,
                }),
            }
            done += 1;
        }
        on_event(Event::Progress { done, total });
    }

    let count = |s: RowStatus| report.iter().filter(|r| r.status == s).count();
    let (created, updated, unchanged, errors) = (
        count(RowStatus::Created),
        count(RowStatus::Updated),
        count(RowStatus::Unchanged),
        count(RowStatus::Error),
    );
    let summary = if opts.dry_run {
        format!(
            "Dry run, nothing was stored: of {total} rows, {created} would be created, {updated} updated, {unchanged} are unchanged and {errors} have errors."
        )
    } else if errors > 0 {
        format!(
            "Imported the good rows: {created} customers created, {updated} updated, {unchanged} unchanged. {errors} rows have errors and were not imported; fix them and import the file again (rows already imported are not duplicated)."
        )
    } else {
        format!(
            "Imported all {total} rows: {created} customers created, {updated} updated, {unchanged} unchanged."
        )
    };
    Ok(ImportReport {
        dry_run: opts.dry_run,
        summary,
        total,
        created,
        updated,
        unchanged,
        errors,
        mapping: map
            .columns
            .iter()
            .map(|(f, (_, h))| (f.as_str(), h.clone()))
            .collect(),
        ignored_columns: map.ignored,
        rows: report,
    })
}

/// The column a rule's refusal is about, for the codes that concern the owner.
fn owner_column(code: &str, map: &Mapping) -> Option<String> {
    matches!(code, "unknown_owner" | "owner_not_allowed")
        .then(|| map.header(Field::Owner))
        .flatten()
}

/// A row ready to push.
struct Planned {
    idx: usize,
    key: String,
    id: DocId,
    /// Created or Updated.
    status: RowStatus,
    /// Whether the key must be recorded before the push (a new key).
    reserve: bool,
    /// The Automerge changes; empty when the customer already says all the row says.
    changes: Vec<Vec<u8>>,
}

/// Decides what a valid row does, and makes its Automerge changes. The rules a push will run
/// are run here too, so a dry run reports what the import would refuse.
fn plan(
    g: &Good,
    known: Option<DocId>,
    stored: &HashMap<DocId, Vec<u8>>,
    caller: &Caller,
    default_owner: UserId,
    dir: &UserDirectory,
) -> Result<Planned, Rejection> {
    let internal = || {
        Rejection::new(
            "internal_error",
            "The stored customer could not be read; nothing was changed.",
        )
    };
    let existing = known.and_then(|id| stored.get(&id).map(|b| (id, b)));
    let (id, mut doc, before, status) = match existing {
        Some((id, bytes)) => {
            let doc = automerge::Automerge::load(bytes).map_err(|_| internal())?;
            let (record, _) = Record::read(&doc).map_err(|_| internal())?;
            (id, doc, Some(record), RowStatus::Updated)
        }
        // A new customer, or one an interrupted import recorded but never stored: the same id.
        None => (
            known.unwrap_or_default(), // a default DocId is a fresh one
            automerge::Automerge::new(),
            None,
            RowStatus::Created,
        ),
    };
    let after = match &before {
        Some(Record::Customer(c)) => {
            let mut c = c.clone();
            g.values.apply(&mut c);
            c
        }
        Some(_) => return Err(internal()),
        None => {
            let mut c = Customer::new(g.values.name.clone(), caller.user);
            c.id = id;
            c.owner = default_owner;
            g.values.apply(&mut c);
            c
        }
    };
    let after = Record::Customer(after);
    if before.as_ref() == Some(&after) {
        return Ok(Planned {
            idx: g.idx,
            key: g.key.clone(),
            id,
            status: RowStatus::Unchanged,
            reserve: false,
            changes: Vec::new(),
        });
    }
    rules::check_change(id, before.as_ref(), &after, caller, dir)?;
    // A fresh actor per change: the server is not a long-lived peer with its own history.
    doc.set_actor(automerge::ActorId::random());
    let heads = doc.get_heads();
    let mut tx = doc.transaction();
    after.write(&mut tx).map_err(|_| internal())?;
    tx.commit();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&heads)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    Ok(Planned {
        idx: g.idx,
        key: g.key.clone(),
        id,
        status: if changes.is_empty() {
            RowStatus::Unchanged
        } else {
            status
        },
        reserve: known.is_none(),
        changes,
    })
}

// ---- Command line ----

/// `fieldsync import customers` as parsed by main.rs.
pub struct CliArgs {
    pub file: std::path::PathBuf,
    pub tenant: String,
    pub owner: Option<String>,
    /// `FIELD=HEADER` pairs.
    pub map: Vec<String>,
    pub dry_run: bool,
    pub report: Option<std::path::PathBuf>,
    /// The admin or manager to import as (email); the tenant's first active admin if absent.
    pub as_user: Option<String>,
}

/// Runs an import from the command line on the database directly: progress on stderr (for
/// files over 500 rows, at most once a second or every 5%), every row error on stderr, the
/// summary on stdout, the error report as CSV if asked. `Ok(false)` when any row failed.
pub async fn run_cli(store: &dyn Store, args: CliArgs) -> anyhow::Result<bool> {
    use anyhow::Context;
    let tenant = crate::app::tenant(store, &args.tenant).await?;
    let users = store.list_users(tenant.id).await?;
    let who = match &args.as_user {
        Some(email) => users
            .iter()
            .find(|u| u.email == email.trim().to_lowercase())
            .ok_or_else(|| anyhow::anyhow!("no user '{email}' in '{}'", args.tenant))?,
        None => users
            .iter()
            .find(|u| u.role == Role::Admin && !u.disabled)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "'{}' has no active admin to import as; create one or pass --as EMAIL",
                    args.tenant
                )
            })?,
    };
    if who.disabled || !matches!(who.role, Role::Admin | Role::Manager) {
        anyhow::bail!(
            "{} cannot import customers: only active admins and managers can",
            who.email
        );
    }
    let caller = Caller {
        tenant: tenant.id,
        user: who.id,
        role: who.role,
    };
    let mut map = Vec::new();
    for m in &args.map {
        let (field, header) = m
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("write --map as FIELD=HEADER, not '{m}'"))?;
        map.push((field.trim().to_owned(), header.to_owned()));
    }
    let len = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    if len > MAX_IMPORT_BYTES as u64 {
        anyhow::bail!(
            "{} is larger than {} MiB; split it into smaller files",
            args.file.display(),
            MAX_IMPORT_BYTES >> 20
        );
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let opts = ImportOptions {
        map,
        default_owner: args.owner.clone(),
        dry_run: args.dry_run,
    };
    let mut last = (std::time::Instant::now(), 0usize);
    let mut progress = |e: Event<'_>| {
        let Event::Progress { done, total } = e else {
            return;
        };
        let step = (total / 20).max(1);
        if total > 500
            && (done == total
                || done >= last.1 + step
                || last.0.elapsed() >= std::time::Duration::from_secs(1))
        {
            eprintln!("{done} / {total} rows ({}%)", done * 100 / total.max(1));
            last = (std::time::Instant::now(), done);
        }
    };
    let report = match import_customers(store, &caller, &bytes, &opts, &mut progress).await {
        Ok(r) => r,
        Err(ImportError::Invalid(r)) => anyhow::bail!("{} ({})", r.message, r.code),
        Err(ImportError::Store(e)) => {
            return Err(anyhow::Error::new(e).context(
                "the database failed during the import; rows stored so far stay stored, and running the same file again finishes it without duplicates",
            ));
        }
    };
    for r in &report.rows {
        for e in &r.errors {
            match &e.column {
                Some(c) => eprintln!("row {}, column '{c}': {} ({})", r.row, e.message, e.code),
                None => eprintln!("row {}: {} ({})", r.row, e.message, e.code),
            }
        }
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report.errors_csv())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote the error report to {}.", path.display());
    }
    let mapping: Vec<String> = report
        .mapping
        .iter()
        .map(|(f, h)| format!("{f} <- '{h}'"))
        .collect();
    eprintln!("Columns: {}.", mapping.join(", "));
    if !report.ignored_columns.is_empty() {
        eprintln!("Ignored columns: {}.", report.ignored_columns.join(", "));
    }
    println!("{}", report.summary);
    Ok(report.errors == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(text: &str) -> Vec<Vec<String>> {
        parse_csv(text, sniff_delimiter(text))
            .expect("csv")
            .into_iter()
            .map(|r| r.cells)
            .collect()
    }

    #[test]
    fn quoted_cells_keep_delimiters_quotes_and_line_breaks() {
        let rows = cells("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n1,,3");
        assert_eq!(rows[1], vec!["x, y", "say \"hi\"", "two\nlines"]);
        assert_eq!(rows[2], vec!["1", "", "3"]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn row_numbers_count_records_not_lines() {
        let rows = parse_csv("h\n\"a\nb\"\nc\n", ',').expect("csv");
        let nums: Vec<usize> = rows.iter().map(|r| r.row).collect();
        assert_eq!(nums, vec![1, 2, 3]);
    }

    #[test]
    fn an_unclosed_quote_names_its_row() {
        let Err(ImportError::Invalid(r)) = parse_csv("h\nok\n\"broken\n", ',') else {
            panic!("accepted");
        };
        assert_eq!(r.code, "invalid_csv");
        assert!(r.message.contains("Row 3"), "{}", r.message);
    }

    #[test]
    fn semicolon_and_tab_files_are_recognised() {
        assert_eq!(sniff_delimiter("Name;Phone;Lat\nx;y;1,5"), ';');
        assert_eq!(sniff_delimiter("Name\tPhone\n"), '\t');
        assert_eq!(sniff_delimiter("Name,\"a;b;c\"\n"), ',');
    }

    #[test]
    fn headers_map_by_common_names_and_explicit_mapping_wins() {
        let headers: Vec<String> = [
            "Company",
            "E-mail",
            "Tel",
            "Lng",
            "LAT",
            "External ID",
            "Misc",
        ]
        .map(String::from)
        .to_vec();
        let m = Mapping::resolve(&headers, &[]).expect("mapping");
        assert_eq!(m.header(Field::Name).as_deref(), Some("Company"));
        assert_eq!(m.header(Field::Email).as_deref(), Some("E-mail"));
        assert_eq!(m.header(Field::Phone).as_deref(), Some("Tel"));
        assert_eq!(m.header(Field::Lon).as_deref(), Some("Lng"));
        assert_eq!(m.header(Field::Lat).as_deref(), Some("LAT"));
        assert_eq!(m.header(Field::ExternalId).as_deref(), Some("External ID"));
        assert_eq!(m.ignored, vec!["Misc"]);
        let m = Mapping::resolve(
            &headers,
            &[("name".into(), "misc".into()), ("phone".into(), "".into())],
        )
        .expect("mapping");
        assert_eq!(m.header(Field::Name).as_deref(), Some("Misc"));
        assert_eq!(m.header(Field::Phone), None);
        assert!(m.ignored.contains(&"Company".to_owned()));
    }

    #[test]
    fn mapping_refuses_unknown_fields_and_columns() {
        let headers = vec!["Name".to_owned()];
        for (map, code) in [
            (("colour", "Name"), "unknown_field"),
            (("phone", "Telephone"), "unknown_column"),
        ] {
            let Err(ImportError::Invalid(r)) =
                Mapping::resolve(&headers, &[(map.0.into(), map.1.into())])
            else {
                panic!("accepted {map:?}");
            };
            assert_eq!(r.code, code);
        }
        let Err(ImportError::Invalid(r)) = Mapping::resolve(&["Phone".to_owned()], &[]) else {
            panic!("accepted a file without names");
        };
        assert_eq!(r.code, "no_name_column");
    }

    #[test]
    fn keys_ignore_case_spacing_and_phone_punctuation() {
        let v = |name: &str, phone: &str| Values {
            name: name.into(),
            phone: Some(Some(phone.into())),
            ..Values::default()
        };
        assert_eq!(
            row_key("", &v("Acme  Ltd", "+86 (28) 1234")),
            row_key("", &v("acme ltd", "+86 28-1234"))
        );
        assert_ne!(row_key("", &v("Acme", "1")), row_key("", &v("Acme", "2")));
        assert_eq!(row_key("C-1", &v("Acme", "1")), "ext:C-1");
    }

    #[test]
    fn the_error_report_quotes_cells_that_need_it() {
        let report = ImportReport {
            dry_run: false,
            summary: String::new(),
            total: 2,
            created: 1,
            updated: 0,
            unchanged: 0,
            errors: 1,
            mapping: BTreeMap::new(),
            ignored_columns: Vec::new(),
            rows: vec![
                RowReport {
                    row: 2,
                    status: RowStatus::Created,
                    customer_id: Some(DocId::new()),
                    errors: Vec::new(),
                },
                RowReport {
                    row: 3,
                    status: RowStatus::Error,
                    customer_id: None,
                    errors: vec![RowError {
                        code: "invalid_phone".into(),
                        message: "'a, \"b\"' in 'phone' is not a phone number.".into(),
                        column: Some("Tel, mobile".into()),
                    }],
                },
            ],
        };
        assert_eq!(
            report.errors_csv(),
            "row,column,code,message\n3,\"Tel, mobile\",invalid_phone,\"'a, \"\"b\"\"' in 'phone' is not a phone number.\"\n"
        );
    }

    #[test]
    fn decimal_commas_are_read() {
        assert_eq!(parse_number("30,65"), Some(30.65));
        assert_eq!(parse_number("-104.06"), Some(-104.06));
        assert_eq!(parse_number("north"), None);
        assert_eq!(parse_number("NaN"), None);
    }
}
