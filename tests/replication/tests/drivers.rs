//! Counter arithmetic and assignment, rate limits and the day-2 functions as applications call
//! them, through a real client library (the `postgres` crate, extended protocol, parameters bound
//! the library's way), not through psql literals. Drivers bind `$1` in one of three ways, and each must work:
//!
//! - typed by the driver (psycopg 3, JDBC, Npgsql): `smallint`, `integer`, `bigint` or
//!   `numeric`, chosen by the value's size or the host type;
//! - untyped, the value sent as text (node-postgres, libpq's `PQexecParams` without types,
//!   psycopg 3's `%t`): PostgreSQL infers the parameter's type;
//! - prepared untyped, then bound as the server inferred (rust-postgres, asyncpg).

use std::error::Error;

use crdt_replication_tests::*;
use postgres::types::{Format, IsNull, ToSql, Type};
use postgres::{Client, NoTls};

const DB: &str = "app";

/// A whole number bound as `numeric` in its binary form (one base-10000 digit group per four
/// decimal digits), as a driver binds a decimal host type.
#[derive(Debug)]
struct WholeNumeric(i64);

impl ToSql for WholeNumeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let mut magnitude = self.0.unsigned_abs();
        let mut groups = Vec::new();
        while magnitude > 0 {
            groups.push((magnitude % 10_000) as i16);
            magnitude /= 10_000;
        }
        groups.reverse();
        let weight = groups.len() as i16 - 1;
        let sign: u16 = if self.0 < 0 { 0x4000 } else { 0 };
        for field in [groups.len() as i16, weight.max(0), sign as i16, 0] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        for group in groups {
            out.extend_from_slice(&group.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    postgres::types::to_sql_checked!();
}

/// A value sent as text for a parameter of whatever type the server inferred, as untyped
/// text-protocol drivers send every parameter.
#[derive(Debug)]
struct AsText(&'static str);

impl ToSql for AsText {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    postgres::types::to_sql_checked!();
}

fn connect(node: &Cluster) -> Client {
    Client::connect(&node.conninfo(DB), NoTls).unwrap_or_else(|err| panic!("connecting: {err}"))
}

fn inventory(client: &mut Client, id: i32) -> i64 {
    client
        .query_one("SELECT inventory::bigint FROM product WHERE id = $1", &[&id])
        .expect("reading inventory")
        .get(0)
}

fn node_with_product() -> Cluster {
    let node = Cluster::start("drivers");
    node.create_database_with_product(DB);
    node
}

#[test]
fn counter_amounts_bound_with_the_drivers_types() {
    let node = node_with_product();
    let mut client = connect(&node);
    let add = "UPDATE product SET inventory = inventory + $1 WHERE id = $2";
    let subtract = "UPDATE product SET inventory = inventory - $1 WHERE id = $2";
    let insert = "INSERT INTO product (id, inventory) VALUES ($2, $1)";

    let cases: [(Type, &(dyn ToSql + Sync), i64); 4] = [
        (Type::INT2, &5i16, 5),
        (Type::INT4, &70_000i32, 70_000),
        (Type::INT8, &5_000_000_000i64, 5_000_000_000),
        (Type::NUMERIC, &WholeNumeric(123_456_789), 123_456_789),
    ];
    for (id, (ty, amount, value)) in (1..).zip(cases.iter()) {
        let insert = client.prepare_typed(insert, &[ty.clone(), Type::INT4]).unwrap();
        client
            .execute(&insert, &[*amount, &id])
            .unwrap_or_else(|err| panic!("INSERT with a {ty} amount: {err}"));
        assert_eq!(inventory(&mut client, id), *value, "{ty}");
        for statement in [add, add, subtract] {
            let statement = client.prepare_typed(statement, &[ty.clone(), Type::INT4]).unwrap();
            client
                .execute(&statement, &[*amount, &id])
                .unwrap_or_else(|err| panic!("{ty}: {err}"));
        }
        assert_eq!(inventory(&mut client, id), 2 * value, "{ty}");
    }

    // A numeric with a fraction is refused, never rounded.
    let error = client
        .execute("UPDATE product SET inventory = inventory + 2.5 WHERE id = $1", &[&1i32])
        .unwrap_err();
    assert_eq!(error.code().map(|code| code.code()), Some("22023"), "{error}");
    assert_eq!(inventory(&mut client, 1), 10);
}

#[test]
fn untyped_parameters_are_read_exactly() {
    let node = node_with_product();
    let mut client = connect(&node);

    // Sent untyped, as text: `inventory + $1` infers text; the column infers crdt.counter.
    let insert = client
        .prepare("INSERT INTO product (id, inventory) VALUES ($1, $2)")
        .unwrap();
    assert_eq!(insert.params()[1].name(), "counter");
    client.execute(&insert, &[&AsText("1"), &AsText("5")]).unwrap();
    let add = client
        .prepare("UPDATE product SET inventory = inventory + $1 WHERE id = $2")
        .unwrap();
    assert_eq!(add.params()[0], Type::TEXT, "an untyped amount resolves to text");
    client.execute(&add, &[&AsText("5"), &AsText("1")]).unwrap();
    let subtract = client
        .prepare("UPDATE product SET inventory = inventory - $1 WHERE id = $2")
        .unwrap();
    client.execute(&subtract, &[&AsText("1"), &AsText("1")]).unwrap();
    assert_eq!(inventory(&mut client, 1), 9);

    // Bound as the server inferred (a string for text), as rust-postgres and asyncpg do.
    client.execute(&add, &[&"-9", &1i32]).unwrap();
    assert_eq!(inventory(&mut client, 1), 0);

    // Not a whole number: refused with the SQLSTATE PostgreSQL gives bad text.
    for (amount, code) in [("2.5", "22023"), ("five", "22P02"), ("99999999999999999999", "22003")] {
        let error = client.execute(&add, &[&amount, &1i32]).unwrap_err();
        assert_eq!(error.code().map(|code| code.code()), Some(code), "{amount}: {error}");
    }
    assert_eq!(inventory(&mut client, 1), 0);

    // The plain number went to this node's slot, as `+` puts it.
    let node_id: String = client.query_one("SELECT crdt.node_id()::text", &[]).unwrap().get(0);
    let text: String = client
        .query_one("SELECT inventory::text FROM product WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert!(text.contains(&node_id), "{text}");
}

/// The answers of `calls` runs of `statement` with `params`.
fn answers(
    client: &mut Client,
    statement: &postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
    calls: usize,
) -> Vec<bool> {
    (0..calls)
        .map(|_| client.query_one(statement, params).expect("calling").get(0))
        .collect()
}

#[test]
fn rate_limit_with_parameters_bound_three_ways() {
    let node = node_with_product();
    let mut client = connect(&node);

    // Prepared untyped, bound as the server inferred (rust-postgres, asyncpg); the interval as
    // text, as those drivers send a type they have no binary form for.
    let limit = client.prepare("SELECT crdt.rate_limit($1, $2, $3)").unwrap();
    assert_eq!(limit.params(), [Type::TEXT, Type::INT8, Type::INTERVAL]);
    let params: [&(dyn ToSql + Sync); 3] = [&"token:inferred", &3i64, &AsText("1 hour")];
    assert_eq!(answers(&mut client, &limit, &params, 4), [true, true, true, false]);
    // The README's example, as an application sends it.
    let readme = client
        .prepare("SELECT crdt.rate_limit('token:' || $1, 100, '1 minute')")
        .unwrap();
    assert_eq!(readme.params(), [Type::TEXT]);
    assert_eq!(answers(&mut client, &readme, &[&"abc"], 101)[99..], [true, false]);
    let peek = client.prepare("SELECT crdt.rate_limit_peek($1, $2, $3)").unwrap();
    let params: [&(dyn ToSql + Sync); 3] = [&"token:inferred", &4i64, &AsText("1 hour")];
    assert_eq!(
        answers(&mut client, &peek, &params, 3),
        [true; 3],
        "peeking counts nothing"
    );

    // Typed by the driver (JDBC, Npgsql): varchar and int4 where the function takes text and
    // bigint, the interval cast in the SQL, as such drivers need.
    let typed = client
        .prepare_typed(
            "SELECT crdt.rate_limit($1, $2, $3::interval, $4, $5)",
            &[Type::VARCHAR, Type::INT4, Type::VARCHAR, Type::INT4, Type::VARCHAR],
        )
        .unwrap();
    let params: [&(dyn ToSql + Sync); 5] = [&"token:typed", &4i32, &"1 minute", &2i32, &"split"];
    assert_eq!(answers(&mut client, &typed, &params, 3), [true, true, false]);

    // Every parameter untyped text (node-postgres, libpq without types).
    let untyped = client.prepare("SELECT crdt.rate_limit($1, $2, $3, $4, $5)").unwrap();
    let params: [&(dyn ToSql + Sync); 5] = [
        &AsText("token:text"),
        &AsText("2"),
        &AsText("30 seconds"),
        &AsText("1"),
        &AsText("shared"),
    ];
    assert_eq!(answers(&mut client, &untyped, &params, 3), [true, true, false]);

    // What a driver's user gets wrong is refused with 22023, never counted.
    for (per, max_count, mode) in [
        ("1 month", "5", "shared"),
        ("1 hour", "-1", "shared"),
        ("1 hour", "5", "both"),
    ] {
        let params: [&(dyn ToSql + Sync); 5] = [
            &AsText("token:bad"),
            &AsText(max_count),
            &AsText(per),
            &AsText("1"),
            &AsText(mode),
        ];
        let error = client.query_one(&untyped, &params).unwrap_err();
        assert_eq!(
            error.code().map(|code| code.code()),
            Some("22023"),
            "{per} {max_count} {mode}: {error}"
        );
    }
    let counted: i64 = client
        .query_one(
            "SELECT sum(count::bigint)::int8 FROM crdt.rate_limits WHERE key = ANY($1)",
            &[&vec!["token:inferred", "token:typed", "token:text", "token:bad"]],
        )
        .unwrap()
        .get(0);
    assert_eq!(counted, 3 + 4 + 2, "admitted calls only");
}

#[test]
fn day_two_functions_with_parameters_bound() {
    let node = node_with_product();
    let mut client = connect(&node);
    client
        .execute("INSERT INTO product (id, inventory) VALUES (1, 5)", &[])
        .unwrap();

    // A table named by a parameter: regclass inferred and sent as text, or cast from a typed
    // text parameter. (Compared untyped, `table_name = $1` would infer oid, as for any regclass.)
    let stats = client
        .prepare("SELECT remote_rows, stats_reset IS NULL FROM crdt.stats WHERE table_name = $1::regclass")
        .unwrap();
    assert_eq!(stats.params(), [Type::REGCLASS]);
    let row = client.query_one(&stats, &[&AsText("product")]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, bool>(1)), (0, true));
    let reset = client.prepare("SELECT crdt.stats_reset($1)").unwrap();
    client.query_one(&reset, &[&AsText("public.product")]).unwrap();
    client
        .query_one("SELECT crdt.stats_reset($1::text::regclass)", &[&"product"])
        .unwrap();
    let error = client.query_one(&reset, &[&AsText("no_such_table")]).unwrap_err();
    assert_eq!(error.code().map(|code| code.code()), Some("42P01"), "{error}");

    // crdt.status() and the conflict journal, read with parameters.
    let status = client
        .query("SELECT item, name, ok FROM crdt.status() WHERE item = $1", &[&"stats"])
        .unwrap();
    assert!(!status.is_empty());
    assert!(
        status.iter().all(|row| row.get::<_, bool>(2)),
        "crdt is preloaded: stats ok"
    );
    let journal: i64 = client
        .query_one(
            "SELECT count(*) FROM crdt.conflicts WHERE table_name = $1",
            &[&"public.product"],
        )
        .unwrap()
        .get(0);
    assert_eq!(journal, 0);
}
