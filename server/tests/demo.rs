//! `fieldsync serve --demo`: the demo tenant is seeded through the real push path, with a user
//! of every role, and seeding again changes nothing.

use fieldsync_server::{app, demo, store};
use fieldsync_sync::{Caller, Role};

#[tokio::test]
async fn the_demo_tenant_has_every_role_and_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store::open(&dir.path().join("fieldsync.db").to_string_lossy())
        .await
        .expect("open");
    assert!(demo::seed(s.as_ref()).await.expect("seed"));
    assert!(
        !demo::seed(s.as_ref()).await.expect("seed again"),
        "a second seed does nothing"
    );
    let t = app::tenant(s.as_ref(), demo::DEMO_TENANT)
        .await
        .expect("tenant");
    let users = s.list_users(t.id).await.expect("users");
    for role in Role::ALL {
        assert!(
            users.iter().any(|u| u.role == role),
            "no {role} in the demo"
        );
    }
    let admin = users.iter().find(|u| u.role == Role::Admin).expect("admin");
    let caller = Caller {
        tenant: t.id,
        user: admin.id,
        role: Role::Admin,
    };
    assert_eq!(s.list_customers(&caller).await.expect("customers").len(), 3);
    assert_eq!(s.list_projects(&caller).await.expect("projects").len(), 2);
    assert_eq!(s.count_documents(t.id).await.expect("count"), 5);
}
