//! CISA's SSVC decision tree (the CISA coordinator tree, v2.0.3 of the CERT/CC tables):
//! Exploitation × Automatable × Technical Impact × Mission and Well-being → Track, Track*,
//! Attend or Act.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exploitation {
    None,
    /// Public proof of concept (or a well-known method).
    Poc,
    /// Reliable evidence of exploitation in the wild (e.g. the CISA KEV catalog).
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TechnicalImpact {
    Partial,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MissionImpact {
    Low,
    Medium,
    High,
}

/// CISA's four outcomes, in increasing urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Decision {
    Track,
    #[serde(rename = "Track*")]
    TrackStar,
    Attend,
    Act,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::Track => "Track",
            Decision::TrackStar => "Track*",
            Decision::Attend => "Attend",
            Decision::Act => "Act",
        }
    }
}

/// The tree, written out as its table.
pub fn decide(e: Exploitation, automatable: bool, t: TechnicalImpact, m: MissionImpact) -> Decision {
    use Decision::*;
    use Exploitation as E;
    use MissionImpact as M;
    use TechnicalImpact as T;
    // [low, medium, high] for each (exploitation, automatable, technical impact).
    let row: [Decision; 3] = match (e, automatable, t) {
        (E::None, false, T::Partial) => [Track, Track, Track],
        (E::None, false, T::Total) => [Track, Track, TrackStar],
        (E::None, true, T::Partial) => [Track, Track, Attend],
        (E::None, true, T::Total) => [Track, Track, Attend],
        (E::Poc, false, T::Partial) => [Track, Track, TrackStar],
        (E::Poc, false, T::Total) => [Track, TrackStar, Attend],
        (E::Poc, true, T::Partial) => [Track, Track, Attend],
        (E::Poc, true, T::Total) => [Track, TrackStar, Attend],
        (E::Active, false, T::Partial) => [Track, Track, Attend],
        (E::Active, false, T::Total) => [Track, Attend, Act],
        (E::Active, true, T::Partial) => [Attend, Attend, Act],
        (E::Active, true, T::Total) => [Attend, Act, Act],
    };
    row[match m {
        M::Low => 0,
        M::Medium => 1,
        M::High => 2,
    }]
}
