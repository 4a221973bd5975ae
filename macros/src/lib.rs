//! `#[derive(SqlType)]`: one declaration per SQL type of the `crdt` extension.
//!
//! ```ignore
//! /// An additive counter.
//! #[derive(SqlType)]
//! #[sql_type(name = "counter", state = crdt_core::PnCounter, input = stable,
//!            plain_input = plain_number_input,
//!            merge(by = crdt_core::merge_encoded, function = merge_counters))]
//! pub struct Counter {
//!     encoded: Vec<u8>,
//! }
//! ```
//!
//! generates, from that one declaration, everything the type needs besides its own operations:
//! - the SQL: `CREATE TYPE crdt.counter` with its four I/O functions (`counter_in`, `_out`,
//!   `_recv`, `_send`), and, with `merge`, `crdt.merge(counter, counter)` and the aggregate
//!   `crdt.merge_agg(counter)`;
//! - the I/O functions' C symbols (`counter_in_wrapper`, …: the names the released install
//!   scripts use), which call the extension's generic I/O code (`src/types/io.rs`);
//! - pgrx's datum traits and SQL mapping (through `crate::types::crdt_sql_type!`).
//!
//! A procedural macro because the SQL text and the symbols are built from the type's name:
//! `macro_rules!` cannot make a string literal for pgrx's `extension_sql!` nor new identifiers.
//! How to add a type: `docs/adding-a-type.md`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{parse_macro_input, DeriveInput, Ident, LitStr, Path};

/// See the crate's documentation.
#[proc_macro_derive(SqlType, attributes(sql_type))]
pub fn derive_sql_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match Declaration::read(&input) {
        Ok(declaration) => declaration.expand().into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// What `#[sql_type(...)]` says about one type.
struct Declaration {
    rust_type: Ident,
    /// The SQL name, unqualified: the type lives in the extension's schema, `crdt`.
    sql_name: String,
    /// The core state the stored bytes encode (implements `crdt_core::StoredForm`).
    state: Path,
    /// The text input's volatility: `immutable`, or `stable` when it reads settings.
    input_volatility: String,
    /// Reads a text that is not the type's text form (e.g. a counter's plain number).
    plain_input: Option<Path>,
    merge: Option<Merge>,
}

/// `merge(by = <core fn>, function = <Rust name>)`: the type merges, by that core function
/// over two encodings. The Rust name gives the C symbol (`<name>_wrapper`) the released
/// install scripts use for `crdt.merge`.
struct Merge {
    by: Path,
    function: Ident,
}

impl Declaration {
    fn read(input: &DeriveInput) -> syn::Result<Declaration> {
        let mut sql_name = None;
        let mut state = None;
        let mut input_volatility = String::from("IMMUTABLE");
        let mut plain_input = None;
        let mut merge = None;
        let attribute = input
            .attrs
            .iter()
            .find(|attribute| attribute.path().is_ident("sql_type"))
            .ok_or_else(|| syn::Error::new(Span::call_site(), "#[derive(SqlType)] needs #[sql_type(...)]"))?;
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                sql_name = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("state") {
                state = Some(meta.value()?.parse::<Path>()?);
            } else if meta.path.is_ident("input") {
                let volatility = meta.value()?.parse::<Ident>()?;
                input_volatility = match volatility.to_string().as_str() {
                    "immutable" => "IMMUTABLE".into(),
                    "stable" => "STABLE".into(),
                    _ => return Err(meta.error("input is `immutable` or `stable`")),
                };
            } else if meta.path.is_ident("plain_input") {
                plain_input = Some(meta.value()?.parse::<Path>()?);
            } else if meta.path.is_ident("merge") {
                let mut by = None;
                let mut function = None;
                meta.parse_nested_meta(|inner| {
                    if inner.path.is_ident("by") {
                        by = Some(inner.value()?.parse::<Path>()?);
                    } else if inner.path.is_ident("function") {
                        function = Some(inner.value()?.parse::<Ident>()?);
                    } else {
                        return Err(inner.error("merge(...) takes `by` and `function`"));
                    }
                    Ok(())
                })?;
                match (by, function) {
                    (Some(by), Some(function)) => merge = Some(Merge { by, function }),
                    _ => return Err(meta.error("merge(...) needs both `by` and `function`")),
                }
            } else {
                return Err(meta.error("unknown sql_type key: name, state, input, plain_input or merge"));
            }
            Ok(())
        })?;
        let sql_name = sql_name.ok_or_else(|| syn::Error::new_spanned(attribute, "sql_type needs `name`"))?;
        let state = state.ok_or_else(|| syn::Error::new_spanned(attribute, "sql_type needs `state`"))?;
        Ok(Declaration {
            rust_type: input.ident.clone(),
            sql_name,
            state,
            input_volatility,
            plain_input,
            merge,
        })
    }

    fn expand(&self) -> TokenStream2 {
        let rust_type = &self.rust_type;
        let state = &self.state;
        let name = &self.sql_name;
        let qualified = format!("crdt.{name}");
        let plain_input = match &self.plain_input {
            Some(path) => quote! { #path },
            None => quote! { crate::types::io::no_plain_input },
        };
        let symbol = |role: &str| format_ident!("{name}_{role}_wrapper");
        let info = |role: &str| format_ident!("pg_finfo_{name}_{role}_wrapper");
        let (in_fn, in_info) = (symbol("in"), info("in"));
        let (out_fn, out_info) = (symbol("out"), info("out"));
        let (recv_fn, recv_info) = (symbol("recv"), info("recv"));
        let (send_fn, send_info) = (symbol("send"), info("send"));
        let type_sql = LitStr::new(&self.type_sql(), Span::call_site());
        let type_block = LitStr::new(&format!("{name}_type"), Span::call_site());
        let merge = self.merge.as_ref().map(|merge| self.expand_merge(merge));
        quote! {
            crate::types::crdt_sql_type!(#rust_type, #state, #qualified, #name, #plain_input,
                in #in_fn / #in_info, out #out_fn / #out_info,
                recv #recv_fn / #recv_info, send #send_fn / #send_info);

            ::pgrx::extension_sql!(#type_sql, name = #type_block, creates = [Type(#rust_type)]);

            #merge
        }
    }

    /// `CREATE TYPE` with its I/O functions, as 0.1.0 created them.
    fn type_sql(&self) -> String {
        let name = &self.sql_name;
        let input_volatility = &self.input_volatility;
        format!(
            r#"
CREATE TYPE {name};
CREATE FUNCTION {name}_in(input cstring) RETURNS {name}
    {input_volatility} PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '{name}_in_wrapper';
CREATE FUNCTION {name}_out(input {name}) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '{name}_out_wrapper';
CREATE FUNCTION {name}_recv(internal internal) RETURNS {name}
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '{name}_recv_wrapper';
CREATE FUNCTION {name}_send(value {name}) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '{name}_send_wrapper';
CREATE TYPE {name} (
    INTERNALLENGTH = variable, STORAGE = extended,
    INPUT = {name}_in, OUTPUT = {name}_out, RECEIVE = {name}_recv, SEND = {name}_send
);
"#
        )
    }

    /// `crdt.merge(t, t)` and `crdt.merge_agg(t)`, whose combine function is the same merge, so
    /// it runs in parallel plans.
    fn expand_merge(&self, merge: &Merge) -> TokenStream2 {
        let rust_type = &self.rust_type;
        let name = &self.sql_name;
        let qualified = format!("crdt.{name}");
        let Merge { by, function } = merge;
        let doc = format!(
            "Merges two `{qualified}` states. Commutative, associative and idempotent (the core's \
             property tests), so replicas converge in any delivery order."
        );
        let aggregate_sql = LitStr::new(
            &format!(
                r#"
CREATE AGGREGATE merge_agg({name}) (
    SFUNC = merge,
    STYPE = {name},
    COMBINEFUNC = merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE merge_agg({name}) IS 'Merges {name} states from any number of replicas.';
"#
            ),
            Span::call_site(),
        );
        let aggregate_block = LitStr::new(&format!("{name}_merge_agg"), Span::call_site());
        quote! {
            #[doc = #doc]
            #[::pgrx::pg_extern(immutable, strict, parallel_safe, name = "merge")]
            pub(crate) fn #function(
                left: #rust_type,
                right: #rust_type,
            ) -> Result<#rust_type, ::pgrx::pg_sys::panic::ErrorReport> {
                crate::types::merge_stored(&left.encoded, &right.encoded, #by, #qualified).map(#rust_type::from_stored)
            }

            ::pgrx::extension_sql!(#aggregate_sql, name = #aggregate_block, requires = [#function]);
        }
    }
}
