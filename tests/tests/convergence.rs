//! Property test against the real server: random offline edits on three phones, synced in
//! random orders, always end with every phone and the server holding the same record.

use fieldsync_mobile_core::FieldEdit;
use fieldsync_sync::Role;
use fieldsync_tests::{Harness, Phone};
use proptest::prelude::*;
use std::sync::OnceLock;

struct World {
    h: Harness,
    phones: Vec<Phone>,
    token: String,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let h = Harness::start();
        let t = h.tenant("acme");
        h.user(t, "rep@acme.test", Role::FieldRep, None);
        let phones = (0..3).map(|_| h.phone("acme", "rep@acme.test")).collect();
        let token = h.token("acme", "rep@acme.test");
        World { h, phones, token }
    })
}

#[derive(Clone, Debug)]
enum Op {
    Edit { phone: usize, field: u8, value: u16 },
    Sync { phone: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..7u8, any::<u16>()).prop_map(|(phone, field, value)| Op::Edit { phone, field, value }),
        2 => (0..3usize).prop_map(|phone| Op::Sync { phone }),
    ]
}

fn edit_for(phone: &Phone, id: &str, field: u8, value: u16) -> FieldEdit {
    let (f, v) = match field {
        0 => ("name", format!("Customer {value}")),
        1 => ("phone", format!("+86 {value:05}")),
        2 => ("email", format!("buyer{value}@acme.example")),
        3 => {
            let notes = phone.get_customer(id.into()).expect("get").customer.notes;
            let at = notes
                .char_indices()
                .map(|(i, _)| i)
                .chain([notes.len()])
                .nth(usize::from(value) % (notes.chars().count() + 1))
                .unwrap_or(0);
            (
                "notes",
                format!("{}[{value}]{}", &notes[..at], &notes[at..]),
            )
        }
        4 => (
            "tier",
            ["gold", "silver", "bronze"][usize::from(value) % 3].to_string(),
        ),
        5 => ("tags", format!("t{},u{}", value % 3, value % 5)),
        _ => (
            "location",
            format!("{},{}", f64::from(value % 90), f64::from(value % 180)),
        ),
    };
    FieldEdit {
        field: f.into(),
        value: v,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn three_phones_converge_through_the_server(ops in proptest::collection::vec(op(), 1..24)) {
        let w = world();
        let p = &w.phones;
        let id = p[0].create_customer(fieldsync_mobile_core::NewCustomer { name: "Start".into(), notes: Some("notes".into()), ..Default::default() })
            .expect("create").customer.id.as_string();
        for phone in p {
            phone.sync().expect("sync");
        }
        for op in ops {
            match op {
                Op::Edit { phone, field, value } => {
                    let e = edit_for(&p[phone], &id, field, value);
                    p[phone].edit_customer(id.clone(), vec![e]).expect("edit");
                }
                Op::Sync { phone } => {
                    let r = p[phone].sync().expect("sync");
                    prop_assert!(r.rejected.is_empty(), "valid edits are accepted: {:?}", r.rejected);
                }
            }
        }
        for i in [0, 1, 2, 0, 1] {
            p[i].sync().expect("sync");
        }
        let views: Vec<_> = p.iter().map(|phone| phone.get_customer(id.clone()).expect("get")).collect();
        prop_assert_eq!(&views[0].customer, &views[1].customer);
        prop_assert_eq!(&views[1].customer, &views[2].customer);
        prop_assert!(views.iter().all(|v| !v.pending));
        let (status, server) = w.h.get(&format!("/v1/records/{id}"), Some(&w.token));
        prop_assert_eq!(status, 200);
        let on_server: fieldsync_sync::Record = serde_json::from_value(server["record"].clone()).expect("record");
        prop_assert_eq!(on_server, fieldsync_sync::Record::Customer(views[0].customer.clone()));
    }
}
