//! Counter arithmetic and assignment as applications write them, through a real client library
//! (the `postgres` crate, extended protocol, parameters bound the library's way), not through
//! psql literals. Drivers bind `$1` in one of three ways, and each must work:
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
