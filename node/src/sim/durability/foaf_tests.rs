//! Why FOAF routing keeps fewer documents in the model (docs/durability.md, "Session 10:
//! FOAF"): an insert routed by friend-of-a-friend locations goes straight to the node
//! closest to the key and then spends its hops among that node's neighbours, each of
//! which advertises it and none of which is a sink (it is their closer peer); an insert by
//! own locations passes through other local minima on its way and after, each a sink. So
//! FOAF inserts are stored at fewer nodes, and a fetch made when other nodes are online
//! finds them less often, whichever way the fetch routes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::route::{Graph, Router, HTL, NOT_FOUND_CAP as CAP};
use crate::location::Location;
use crate::sim::direct_swap;
use crate::sim::report::SwapCounts;
use crate::sim::topology::Topology;

/// For `keys` keys: each inserted from a random node online in one hour (a third of the
/// nodes) by FOAF locations or not, then fetched from a random node online in another
/// hour (another third) by FOAF locations: (store copies per insert, share found).
fn insert_then_fetch(foaf_inserts: bool, keys: usize) -> (f64, f64) {
    let n = 600;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let topo = Topology::small_world(n, 40, &mut rng);
    let mut loc: Vec<Location> = (0..n).map(|_| Location(rng.gen())).collect();
    let mut age = vec![0u32; n];
    direct_swap::chain(&topo, &mut loc, &mut age, 100, 0, true, &mut SwapCounts::default(), &mut rng);
    let hour = |rng: &mut ChaCha8Rng| (0..n).map(|_| rng.gen_bool(0.35)).collect::<Vec<bool>>();
    let (on_insert, on_fetch) = (hour(&mut rng), hour(&mut rng));
    let g1 = Graph { adjacency: &topo.adjacency, online: &on_insert, location: &loc };
    let g2 = Graph { adjacency: &topo.adjacency, online: &on_fetch, location: &loc };
    let (mut r1, mut r2) = (Router::new(n), Router::new(n));
    r1.set_foaf(&g1);
    r2.set_foaf(&g2);
    let pick = |rng: &mut ChaCha8Rng, on: &[bool]| (0..).map(|_| rng.gen_range(0..n)).find(|&i| on[i]).unwrap_or(0);
    let (mut copies, mut found) = (0, 0);
    for _ in 0..keys {
        let key = Location(rng.gen());
        let from = pick(&mut rng, &on_insert);
        let insert = r1.route_insert(&g1, from, key, foaf_inserts);
        assert_eq!(insert.visited.len(), HTL as usize, "an insert spends all its hops");
        let stored: Vec<u32> = insert.visited.iter().copied().filter(|&v| g1.is_sink(v as usize, key, 1)).collect();
        copies += stored.len();
        let from = pick(&mut rng, &on_fetch);
        let fetch = r2.route_again(&g2, from, key, (HTL, CAP), None, |v| stored.contains(&(v as u32)));
        found += usize::from(fetch.found);
    }
    (copies as f64 / keys as f64, found as f64 / keys as f64)
}

#[test]
fn foaf_inserts_are_stored_at_fewer_nodes_and_found_less_often() {
    let (foaf_copies, foaf_found) = insert_then_fetch(true, 200);
    let (own_copies, own_found) = insert_then_fetch(false, 200);
    assert!(foaf_copies * 1.3 < own_copies, "store copies per insert: FOAF {foaf_copies}, own {own_copies}");
    assert!(foaf_found + 0.05 < own_found, "found an hour later: FOAF inserts {foaf_found}, own {own_found}");
}
