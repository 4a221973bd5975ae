#![no_main]
// The invariants live in crdt_core::fuzz_checks, shared with the core's regression tests.
libfuzzer_sys::fuzz_target!(|data: &[u8]| crdt_core::fuzz_checks::doc_merge(data));
