//! A CRDT table owned by a role that is not a superuser, replicated both ways: who runs the
//! user's own triggers when changes are applied, and that it all still merges.
//!
//! The probe: an `ENABLE REPLICA` trigger of the table's owner that records `current_user` and
//! tries `ALTER ROLE app_owner SUPERUSER`. Run as a superuser, it makes the owner one. PostgreSQL
//! 16 and later apply a table's changes as its owner; a replicated delete reaches the table
//! through a tombstone in `crdt.deletions`, whose trigger deletes the row as the *table's* owner
//! too, never as the extension's (src/table/roles.rs). On 15 the apply worker runs every change as the
//! subscription's owner (a superuser): there the probe only tries from the delete, which is ours.

use crdt_replication_tests::*;

const DB: &str = "app";

/// What the owner's probe trigger saw, in order: `op|who|became superuser`.
const PROBE_LOG: &str = "SELECT op || '|' || who || '|' || escalated FROM probe_log ORDER BY seq";

fn set_up(node: &Cluster) {
    node.create_database_with_crdt(DB);
    node.sql(
        DB,
        r#"ALTER DATABASE app SET search_path = public, crdt;
           CREATE ROLE app_owner LOGIN;
           GRANT CREATE ON SCHEMA public TO app_owner;
           SET ROLE app_owner;
           CREATE TABLE public.product (id int PRIMARY KEY, name text,
                                        inventory crdt.counter NOT NULL DEFAULT 0);
           SELECT crdt.enable('public.product');
           CREATE TABLE public.probe_log (seq serial, op text, who name, escalated boolean);
           CREATE FUNCTION public.probe() RETURNS trigger LANGUAGE plpgsql AS $$
           DECLARE
               escalated boolean := false;
           BEGIN
               IF TG_OP = 'DELETE' OR current_setting('server_version_num')::int >= 160000 THEN
                   BEGIN
                       ALTER ROLE app_owner SUPERUSER;
                       escalated := true;
                   EXCEPTION WHEN insufficient_privilege THEN
                       NULL;
                   END;
               END IF;
               INSERT INTO public.probe_log (op, who, escalated) VALUES (TG_OP, current_user, escalated);
               RETURN NULL;
           END $$;
           CREATE TRIGGER probe AFTER INSERT OR UPDATE OR DELETE ON public.product
               FOR EACH ROW EXECUTE FUNCTION public.probe();
           ALTER TABLE public.product ENABLE REPLICA TRIGGER probe;"#,
    );
}

/// Runs `sql` on `node` as the table's owner.
fn as_owner(node: &Cluster, sql: &str) {
    node.sql(DB, &format!("SET ROLE app_owner; {sql}"));
}

#[test]
fn replicated_writes_run_the_owners_triggers_as_the_owner() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    set_up(a);
    set_up(b);
    connect_bidirectional(a, b, DB, &["product"]);

    // Each node writes one row of its own: insert, update, delete.
    as_owner(a, "INSERT INTO product VALUES (1, 'from a', 5)");
    as_owner(b, "INSERT INTO product VALUES (2, 'from b', 5)");
    wait_for_replication_idle(&[a, b]);
    as_owner(a, "UPDATE product SET name = 'from a v2' WHERE id = 1");
    as_owner(b, "UPDATE product SET name = 'from b v2' WHERE id = 2");
    wait_for_replication_idle(&[a, b]);
    as_owner(a, "DELETE FROM product WHERE id = 1");
    as_owner(b, "DELETE FROM product WHERE id = 2");
    wait_for_replication_idle(&[a, b]);

    for node in [a, b] {
        assert_eq!(
            node.query_value(DB, "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'"),
            "f",
            "node {} (PostgreSQL {}): the table owner became a superuser; probe log:\n{}",
            node.name(),
            node.major(),
            node.sql(DB, PROBE_LOG)
        );
        // Inserts and updates are PostgreSQL's to apply: as the owner from 16 on, as the
        // subscription's owner on 15. The delete is ours: as the owner on every major.
        let applier = if node.major() >= 16 { "app_owner" } else { "postgres" };
        assert_eq!(
            node.sql(DB, PROBE_LOG),
            format!("INSERT|{applier}|false\nUPDATE|{applier}|false\nDELETE|app_owner|false"),
            "node {} (PostgreSQL {})",
            node.name(),
            node.major()
        );
        assert_eq!(node.query_value(DB, "SELECT count(*) FROM product"), "0");
        assert_eq!(node.query_value(DB, "SELECT count(*) FROM crdt.deletions"), "2");
    }

    // Concurrent writes of a non-superuser's table still merge: the inventory case.
    as_owner(a, "INSERT INTO product VALUES (3, 'widget', 5)");
    wait_for_replication_idle(&[a, b]);
    write_while_apart(
        a,
        b,
        DB,
        "SET ROLE app_owner; UPDATE product SET name = 'widget v2', inventory = inventory + 5 WHERE id = 3",
        "SET ROLE app_owner; UPDATE product SET inventory = inventory - 1 WHERE id = 3",
    );
    wait_for_replication_idle(&[a, b]);
    for node in [a, b] {
        assert_eq!(
            node.query_value(DB, "SELECT name || ' ' || inventory::bigint FROM product WHERE id = 3"),
            "widget v2 9"
        );
    }
    assert_same_snapshot(
        &[a, b],
        DB,
        "SELECT id, name, crdt_clock::text FROM product ORDER BY id",
    );
    assert_no_errors_in_logs(&[a, b]);
}
