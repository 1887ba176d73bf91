//! Policy merge: nearest wins, locks hold from above, priorities order one level, ties are
//! refused, and every field names its source.

use ringfence_policy::*;
use serde_json::json;

fn policy(
    id: &str,
    name: &str,
    level: Level,
    target: &str,
    priority: i32,
    settings: serde_json::Value,
) -> Policy {
    Policy {
        id: id.into(),
        name: name.into(),
        level,
        target: target.into(),
        priority,
        settings: settings.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        locked: Default::default(),
    }
}

#[test]
fn the_nearest_level_wins_and_says_where_from() {
    let ps = vec![
        policy(
            "p1",
            "MSP baseline",
            Level::Partner,
            "Acme MSP",
            0,
            json!({"ring": 2, "reboot": "in window"}),
        ),
        policy("p2", "Servers", Level::Site, "HQ", 0, json!({"ring": 3})),
    ];
    let e = merge(&ps).unwrap();
    assert_eq!(e["ring"].value, json!(3));
    assert_eq!(e["ring"].provenance(), "3 — from site 'HQ', policy 'Servers'");
    assert_eq!(e["reboot"].provenance(), "in window — from partner 'Acme MSP', policy 'MSP baseline'");
    // The order the policies come in does not matter.
    let mut reversed = ps.clone();
    reversed.reverse();
    assert_eq!(merge(&reversed).unwrap(), e);
}

#[test]
fn a_lock_from_above_holds_against_nearer_levels() {
    let mut top =
        policy("p1", "No surprise reboots", Level::Partner, "Acme MSP", 0, json!({"reboot": "never"}));
    top.locked.insert("reboot".into());
    let ps = vec![
        top,
        policy("p2", "Kiosk", Level::Device, "till-01", 0, json!({"reboot": "allowed", "ring": 1})),
    ];
    let e = merge(&ps).unwrap();
    assert_eq!(e["reboot"].value, json!("never"));
    assert!(e["reboot"].locked);
    assert_eq!(e["reboot"].overridden_by_lock, ["Kiosk"]);
    assert_eq!(
        e["reboot"].provenance(),
        "never — from partner 'Acme MSP', policy 'No surprise reboots' (locked)"
    );
    assert_eq!(e["ring"].value, json!(1), "unlocked fields still come from the nearest level");
}

#[test]
fn priority_orders_one_level_and_a_tie_is_refused() {
    let a = policy("g1", "Finance PCs", Level::Group, "Finance", 10, json!({"ring": 1}));
    let b = policy("g2", "All PCs", Level::Group, "Workstations", 5, json!({"ring": 2}));
    assert_eq!(merge(&[a.clone(), b.clone()]).unwrap()["ring"].policy, "Finance PCs");
    assert!(check_ties(&[a.clone(), b.clone()]).is_empty());

    let tied = Policy { priority: 10, ..b.clone() };
    let err = merge(&[a.clone(), tied.clone()]).unwrap_err();
    assert_eq!(err.field, "ring");
    let ties = check_ties(&[a.clone(), tied.clone()]);
    assert_eq!(ties.len(), 1);
    assert_eq!(
        ties[0].to_string(),
        "policies 'Finance PCs' and 'All PCs' both set 'ring' at the group level with priority 10: give one a higher priority"
    );
    // Agreeing policies are not a tie.
    let agreeing = Policy { settings: a.settings.clone(), ..tied };
    assert!(check_ties(&[a.clone(), agreeing.clone()]).is_empty());
    assert_eq!(merge(&[a, agreeing]).unwrap()["ring"].value, json!(1));
}

#[test]
fn a_preview_lists_what_a_change_would_alter() {
    let base =
        vec![policy("p1", "Baseline", Level::Partner, "Acme", 0, json!({"ring": 2, "auto_approve": false}))];
    let mut changed = base.clone();
    changed.push(policy(
        "o1",
        "Bakery",
        Level::Organization,
        "Bakery",
        0,
        json!({"ring": 1, "window": "sat-02"}),
    ));
    let d = diff(&merge(&base).unwrap(), &merge(&changed).unwrap());
    assert_eq!(
        d,
        [
            FieldChange { field: "ring".into(), before: Some(json!(2)), after: Some(json!(1)) },
            FieldChange { field: "window".into(), before: None, after: Some(json!("sat-02")) },
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const LEVELS: [Level; 5] =
        [Level::Partner, Level::Organization, Level::Site, Level::Group, Level::Device];

    fn arb_policy(i: usize) -> impl Strategy<Value = Policy> {
        (0..5usize, 0..3i32, proptest::collection::btree_map("[abc]", (0..3i64, any::<bool>()), 0..3))
            .prop_map(move |(level, priority, fields)| Policy {
                id: format!("p{i}"),
                name: format!("policy {i}"),
                level: LEVELS[level],
                target: format!("target {level}"),
                priority,
                settings: fields.iter().map(|(k, (v, _))| (k.clone(), json!(v))).collect(),
                locked: fields.iter().filter(|(_, (_, l))| *l).map(|(k, _)| k.clone()).collect(),
            })
    }

    fn arb_policies() -> impl Strategy<Value = Vec<Policy>> {
        (0..7usize).prop_flat_map(|n| (0..n).map(arb_policy).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn order_does_not_matter(ps in arb_policies(), seed in any::<u64>()) {
            let mut shuffled = ps.clone();
            let n = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % n);
            shuffled.reverse();
            prop_assert_eq!(merge(&ps), merge(&shuffled));
        }

        #[test]
        fn policies_without_ties_always_merge(ps in arb_policies()) {
            if check_ties(&ps).is_empty() {
                prop_assert!(merge(&ps).is_ok());
            }
        }

        #[test]
        fn the_winner_is_the_farthest_lock_or_else_the_nearest_level(ps in arb_policies()) {
            let Ok(e) = merge(&ps) else { return Ok(()) };
            for (field, f) in &e {
                let setters: Vec<&Policy> = ps.iter().filter(|p| p.settings.contains_key(field)).collect();
                let lockers: Vec<&Policy> = setters.iter().copied().filter(|p| p.locked.contains(field)).collect();
                let expected_level = if lockers.is_empty() {
                    setters.iter().map(|p| p.level).max()
                } else {
                    lockers.iter().map(|p| p.level).min()
                };
                prop_assert_eq!(Some(f.level), expected_level);
                prop_assert_eq!(f.locked, !lockers.is_empty());
                let pool = if lockers.is_empty() { &setters } else { &lockers };
                let top = pool.iter().filter(|p| p.level == f.level).map(|p| p.priority).max();
                let winner = ps.iter().find(|p| p.id == f.policy_id).unwrap();
                prop_assert_eq!(Some(winner.priority), top);
                prop_assert_eq!(&winner.settings[field], &f.value);
            }
        }

        #[test]
        fn a_nearer_policy_never_changes_a_locked_field(ps in arb_policies(), v in 0..3i64) {
            let Ok(before) = merge(&ps) else { return Ok(()) };
            let mut more = ps.clone();
            more.push(Policy {
                id: "nearer".into(),
                name: "nearer".into(),
                level: Level::Device,
                target: "the device".into(),
                priority: 99,
                settings: ["a", "b", "c"].iter().map(|k| (k.to_string(), json!(v + 10))).collect(),
                locked: Default::default(),
            });
            let after = merge(&more).unwrap();
            for (field, f) in before.iter().filter(|(_, f)| f.locked) {
                prop_assert_eq!(&after[field].value, &f.value);
            }
            for (field, f) in after.iter().filter(|(k, _)| !before.get(*k).is_some_and(|b| b.locked)) {
                prop_assert_eq!(&f.value, &json!(v + 10), "{}", field);
            }
        }
    }
}
