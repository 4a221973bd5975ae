//! Property tests of the PN counter (docs/testing.md, "Property tests"): merge algebra,
//! agreement of the owned, in-place and byte-level paths, exact round trips, robustness on
//! hostile input, and convergence of replicas exchanging states.

mod common;

use common::{edited_text, TextEdit};
use crdt_core::fuzz_checks;
use crdt_core::{add_encoded, merge_encoded, AddEncodedError, CounterView, NodeId, PnCounter};
use proptest::prelude::*;
use proptest::sample::Index;

/// Node ids come from a small pool so that random states share nodes.
const POOL: u32 = 12;

fn pool_node(i: u32) -> NodeId {
    // Derived ids: their byte order is unrelated to the index, like real node ids.
    NodeId::derive(0x5eed, i)
}

fn arb_delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -1_000i64..1_000,
        2 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
    ]
}

/// A state built the only way a node builds one: adds, here on 1–8 nodes of the pool.
/// Adds refused for overflow are skipped, as the extension would raise an error for them.
fn arb_counter() -> impl Strategy<Value = PnCounter> {
    (
        proptest::sample::subsequence((0..POOL).collect::<Vec<_>>(), 1..=8),
        proptest::collection::vec((any::<Index>(), arb_delta()), 1..24),
    )
        .prop_map(|(nodes, ops)| {
            let mut counter = PnCounter::new();
            for (which, delta) in ops {
                let _ = counter.add(pool_node(*which.get(&nodes)), delta);
            }
            counter
        })
}

/// Merged states too, which may hold values beyond `i64`.
fn arb_state() -> impl Strategy<Value = PnCounter> {
    proptest::collection::vec(arb_counter(), 1..4).prop_map(|parts| {
        let mut state = PnCounter::new();
        for part in &parts {
            state.merge(part);
        }
        state
    })
}

fn merged(a: &PnCounter, b: &PnCounter) -> PnCounter {
    let mut out = a.clone();
    out.merge(b);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bytes-only shortcut agrees with write_local: it says "kept" exactly when write_local
    /// returns the written state unchanged, for descendants (`c = c + n`, merges) and for
    /// arbitrary assignments alike.
    #[test]
    fn write_local_keeps_agrees_with_write_local(
        old in arb_state(), grown in arb_counter(), other in arb_state(), node in 0..POOL
    ) {
        let descendant = merged(&old, &grown);
        for new in [descendant, other] {
            let kept = PnCounter::write_local_keeps(&old.encode(), &new.encode()).expect("valid encodings");
            match PnCounter::write_local(&old, &new, pool_node(node)) {
                Ok(written) => prop_assert_eq!(kept, written == new),
                // Only an assignment (not kept) can overflow.
                Err(_) => prop_assert!(!kept),
            }
        }
    }

    #[test]
    fn add_on_the_bytes_equals_the_owned_add(a in arb_state(), node in 0..POOL + 2, delta in arb_delta()) {
        // The owned add decides; the byte-level one must write the same bytes or refuse alike,
        // writing nothing then.
        let node = pool_node(node);
        let mut owned = a.clone();
        let expected = owned.add(node, delta).map(|()| owned.encode());
        let mut out = vec![0xee];
        let result = add_encoded(&a.encode(), node, delta, &mut out);
        match expected {
            Ok(bytes) => {
                prop_assert_eq!(result, Ok(()));
                prop_assert_eq!(&out[1..], &bytes[..]);
            }
            Err(error) => {
                prop_assert_eq!(result, Err(AddEncodedError::Counter(error)));
                prop_assert_eq!(out, vec![0xee]);
            }
        }
    }

    #[test]
    fn merge_is_commutative(a in arb_state(), b in arb_state()) {
        prop_assert_eq!(merged(&a, &b).encode(), merged(&b, &a).encode());
    }

    #[test]
    fn merge_is_associative(a in arb_state(), b in arb_state(), c in arb_state()) {
        prop_assert_eq!(
            merged(&merged(&a, &b), &c).encode(),
            merged(&a, &merged(&b, &c)).encode()
        );
    }

    #[test]
    fn merge_is_idempotent(a in arb_state(), b in arb_state()) {
        prop_assert_eq!(merged(&a, &a).encode(), a.encode());
        let ab = merged(&a, &b);
        prop_assert_eq!(merged(&ab, &b).encode(), ab.encode());
        prop_assert_eq!(merged(&ab, &a).encode(), ab.encode());
    }

    #[test]
    fn byte_and_view_merges_equal_owned_merge(a in arb_state(), b in arb_state()) {
        let expected = merged(&a, &b).encode();
        let (a_bytes, b_bytes) = (a.encode(), b.encode());
        let mut out = Vec::new();
        prop_assert!(merge_encoded(&a_bytes, &b_bytes, &mut out).is_ok());
        prop_assert_eq!(&out, &expected);
        let mut via_view = a.clone();
        via_view.merge_view(&CounterView::parse(&b_bytes).expect("valid"));
        prop_assert_eq!(via_view.encode(), expected);
    }

    #[test]
    fn covers_exactly_when_the_merge_changes_nothing(a in arb_state(), b in arb_state()) {
        let both = merged(&a, &b);
        // Independent states rarely cover each other; a merge covers both of its inputs.
        for (x, y) in [(&a, &b), (&b, &a), (&both, &a), (&a, &both), (&both, &b), (&a, &a)] {
            prop_assert_eq!(
                CounterView::covers_each_other(&x.encode(), &y.encode()),
                Ok((merged(x, y) == *x, merged(y, x) == *y))
            );
        }
    }

    #[test]
    fn binary_round_trip_is_exact(a in arb_state()) {
        let bytes = a.encode();
        prop_assert_eq!(bytes.len(), a.encoded_len());
        let decoded = PnCounter::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&decoded, &a);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn text_round_trip_is_exact(a in arb_state()) {
        let text = a.to_text();
        let parsed = PnCounter::from_text(&text).expect("own text parses");
        prop_assert_eq!(&parsed, &a);
        prop_assert_eq!(parsed.to_text(), text);
    }

    #[test]
    fn view_agrees_with_owned(a in arb_state()) {
        let bytes = a.encode();
        let view = CounterView::parse(&bytes).expect("valid");
        prop_assert_eq!(view.value(), a.value());
        prop_assert_eq!(view.value_i64(), a.value_i64());
        prop_assert_eq!(view.len(), a.len());
        prop_assert_eq!(view.to_text(), a.to_text());
        prop_assert_eq!(view.to_counter(), a);
    }

}

// Hostile input: random and mutated encodings and texts, through the same invariants the fuzz
// targets check (crdt_core::fuzz_checks: never a panic, decode and view agree, what is accepted
// is canonical, reads the same in every form, and merges). Cheap per case, so many cases.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_keep_the_invariants(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        versioned in any::<bool>(),
    ) {
        if versioned && !bytes.is_empty() {
            bytes[0] = 1; // get past the version byte more often
        }
        fuzz_checks::counter_binary(&bytes);
    }

    #[test]
    fn mutated_encodings_keep_the_invariants(
        a in arb_state(),
        b in arb_state(),
        flips in proptest::collection::vec((any::<Index>(), 0u8..8), 0..4),
        cut in any::<Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = a.encode();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        fuzz_checks::counter_binary(&bytes);
        // Accepted or not, merging it with a valid state either fails cleanly or is the merge.
        fuzz_checks::counter_merge(&fuzz_checks::join_pair(&bytes, &b.encode()));
    }

    #[test]
    fn arbitrary_text_keeps_the_invariants(text in any::<String>()) {
        fuzz_checks::counter_text(text.as_bytes());
    }

    /// JSON-shaped noise reaches deeper into the parser than arbitrary strings.
    #[test]
    fn json_like_text_keeps_the_invariants(text in r#"[{}\[\]",: 0-9a-fA-F\-.eE\\u]{0,120}"#) {
        fuzz_checks::counter_text(text.as_bytes());
    }

    #[test]
    fn mutated_text_keeps_the_invariants(
        a in arb_state(),
        edits in proptest::collection::vec((any::<Index>(), any::<char>(), any::<bool>()), 1..4),
    ) {
        let edits = edits.into_iter().map(|(at, c, replace)| (at, c, TextEdit::replace_or_remove(replace)));
        let text = edited_text(&a.to_text(), edits);
        fuzz_checks::counter_text(text.as_bytes());
    }

    /// The text shortcut of `PnCounter::encode_text` agrees with the general reader on the
    /// texts it reads and on texts edited to differ from them in small ways.
    #[test]
    fn text_shortcut_agrees_with_the_reader(
        a in arb_state(),
        edits in proptest::collection::vec(
            (any::<Index>(), proptest::sample::select(vec!['0', '1', '9', '-', 'a', 'F', '"', ',', ' ', ']', '}', '.', 'e']), 0u8..3),
            0..3,
        ),
    ) {
        let text = a.to_text();
        prop_assert_eq!(PnCounter::encode_text(&text), Ok(a.encode()));
        let edited = edited_text(&text, edits.into_iter().map(|(at, c, how)| (at, c, TextEdit::from_number(how))));
        fuzz_checks::counter_text(edited.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Replicas that add on their own node and exchange whole states in any order: at every
    /// moment a replica's value is the start value plus, per node, the prefix of that node's
    /// increments it has seen; once everyone has seen everything, all replicas are identical
    /// and hold the start value plus every increment exactly once.
    #[test]
    fn replicas_converge_to_the_sum_of_all_increments(
        replica_count in 2usize..=5,
        start in -100i64..100,
        steps in proptest::collection::vec(
            (any::<Index>(), any::<Index>(), -50i64..50, any::<bool>()), 0..60),
    ) {
        let nodes: Vec<NodeId> = (0..replica_count as u32).map(pool_node).collect();
        let mut replicas = vec![PnCounter::from_value(nodes[0], start); replica_count];
        // own[k]: node k's increments, in the order it made them.
        let mut own: Vec<Vec<i64>> = vec![Vec::new(); replica_count];
        // seen[r][k]: how many of node k's increments replica r has seen.
        let mut seen = vec![vec![0usize; replica_count]; replica_count];
        let expected = |seen_by_r: &[usize], own: &[Vec<i64>]| -> i128 {
            i128::from(start)
                + seen_by_r
                    .iter()
                    .zip(own)
                    .map(|(&n, ops)| ops[..n].iter().map(|&d| i128::from(d)).sum::<i128>())
                    .sum::<i128>()
        };
        for (i, j, delta, is_add) in steps {
            let (i, j) = (i.index(replica_count), j.index(replica_count));
            if is_add {
                replicas[i].add(nodes[i], delta).expect("small deltas never overflow");
                own[i].push(delta);
                seen[i][i] = own[i].len();
            } else {
                let from = replicas[j].clone();
                replicas[i].merge(&from);
                let theirs = seen[j].clone();
                for (mine, theirs) in seen[i].iter_mut().zip(theirs) {
                    *mine = (*mine).max(theirs);
                }
            }
            for r in 0..replica_count {
                prop_assert_eq!(replicas[r].value(), expected(&seen[r], &own));
            }
        }
        // Heal: gather everything (in two different orders), then give it to everyone.
        let mut forward = PnCounter::new();
        for r in &replicas {
            forward.merge(r);
        }
        let mut backward = PnCounter::new();
        for r in replicas.iter().rev() {
            backward.merge(r);
        }
        prop_assert_eq!(forward.encode(), backward.encode());
        let total: i128 = i128::from(start)
            + own.iter().flatten().map(|&d| i128::from(d)).sum::<i128>();
        for r in &mut replicas {
            r.merge(&forward);
            prop_assert_eq!(r.encode(), forward.encode());
            prop_assert_eq!(r.value(), total);
        }
    }
}
