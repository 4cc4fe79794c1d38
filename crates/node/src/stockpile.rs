//! When to generate triples and presignatures. Pure policy, no I/O: the node reports what it
//! owns and what is under way, and gets back what to start.
//!
//! Each node keeps the assets it owns between a low and a high watermark, with hysteresis:
//! a refill starts when the stock falls below the low mark and runs until the high mark, so
//! the node does not start one small generation after every signature. Background
//! generation is capped at `max_concurrent_generations`, so signing, which runs outside
//! this budget, never waits behind it.

use crate::config::StockpileSection;

/// What this node owns and has under way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockLevels {
    pub triples: usize,
    /// Triples being generated (a batch counts its size).
    pub triples_in_flight: usize,
    pub presignatures: usize,
    pub presignatures_in_flight: usize,
    /// Triple batches and presignatures running now.
    pub generations_running: usize,
}

/// What the stock is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Serving an epoch: presignatures up to their high watermark.
    #[default]
    Serving,
    /// Serving an epoch that a reshare is about to end: presignatures die with their epoch,
    /// triples carry over, so presignatures only up to the low watermark and triples enough
    /// for the next epoch's full stock of presignatures.
    Resharing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Generate a batch of this many triples.
    Triples(usize),
    /// Make one presignature from two owned triples.
    Presignature,
}

#[derive(Debug, Clone)]
pub struct Stockpile {
    config: StockpileSection,
    refilling_triples: bool,
    refilling_presignatures: bool,
}

/// Whether a refill is on: starts below `low`, stops at `high`.
fn hysteresis(refilling: bool, level: usize, low: usize, high: usize) -> bool {
    if level >= high {
        false
    } else {
        refilling || level < low
    }
}

impl Stockpile {
    pub fn new(config: StockpileSection) -> Self {
        Self {
            config,
            refilling_triples: false,
            refilling_presignatures: false,
        }
    }

    /// What to start now, given the levels. Call again whenever a level changes.
    pub fn plan(&mut self, levels: StockLevels, phase: Phase) -> Vec<Start> {
        let mut c = self.config.clone();
        if phase == Phase::Resharing {
            // Fill up to the raised high mark without waiting to fall below the low one: the
            // reshare may finish any block now.
            c.triples_high += 2 * c.presignatures_high;
            c.triples_low = c.triples_high;
            c.presignatures_high = c.presignatures_low.max(1);
        }
        let c = &c;
        let presignature_level = levels.presignatures + levels.presignatures_in_flight;
        self.refilling_presignatures = hysteresis(
            self.refilling_presignatures,
            presignature_level,
            c.presignatures_low,
            c.presignatures_high,
        );
        let mut budget = c
            .max_concurrent_generations
            .saturating_sub(levels.generations_running);
        let mut starts = Vec::new();

        // Presignatures first: they are one step from a signature and cheap to make.
        let mut triples = levels.triples;
        let mut wanted = if self.refilling_presignatures {
            c.presignatures_high - presignature_level
        } else {
            0
        };
        while wanted > 0 && triples >= 2 && budget > 0 {
            starts.push(Start::Presignature);
            triples -= 2;
            wanted -= 1;
            budget -= 1;
        }

        // Triples: for the stock, plus two for each presignature still wanted.
        let triple_level = triples + levels.triples_in_flight;
        let triple_high = c.triples_high + 2 * wanted;
        self.refilling_triples = hysteresis(
            self.refilling_triples,
            triple_level,
            c.triples_low,
            triple_high,
        ) || (wanted > 0 && triple_level < 2 * wanted);
        let mut missing = if self.refilling_triples {
            triple_high.saturating_sub(triple_level)
        } else {
            0
        };
        while missing > 0 && budget > 0 {
            let batch = missing.min(c.triple_batch);
            starts.push(Start::Triples(batch));
            missing -= batch;
            budget -= 1;
        }
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> StockpileSection {
        StockpileSection {
            triples_low: 4,
            triples_high: 16,
            presignatures_low: 2,
            presignatures_high: 6,
            max_concurrent_generations: 2,
            triple_batch: 8,
        }
    }

    #[test]
    fn an_empty_node_starts_triples_up_to_its_budget() {
        let mut stockpile = Stockpile::new(config());
        let starts = stockpile.plan(StockLevels::default(), Phase::Serving);
        assert_eq!(starts, vec![Start::Triples(8), Start::Triples(8)]);
    }

    #[test]
    fn presignatures_come_first_when_triples_are_there() {
        let mut stockpile = Stockpile::new(config());
        let levels = StockLevels {
            triples: 10,
            ..Default::default()
        };
        assert_eq!(
            stockpile.plan(levels, Phase::Serving),
            vec![Start::Presignature, Start::Presignature]
        );
    }

    #[test]
    fn a_full_stock_starts_nothing_and_refills_only_below_low() {
        let mut stockpile = Stockpile::new(config());
        let full = StockLevels {
            triples: 16,
            presignatures: 6,
            ..Default::default()
        };
        assert!(stockpile.plan(full, Phase::Serving).is_empty());
        // One signature used a presignature: still above the low mark, nothing to do.
        let after_one = StockLevels {
            presignatures: 5,
            ..full
        };
        assert!(stockpile.plan(after_one, Phase::Serving).is_empty());
        // Below the low mark: refill up to high.
        let low = StockLevels {
            presignatures: 1,
            ..full
        };
        assert_eq!(
            stockpile.plan(low, Phase::Serving),
            vec![Start::Presignature, Start::Presignature]
        );
    }

    #[test]
    fn before_a_reshare_triples_are_kept_rather_than_made_into_presignatures() {
        let mut stockpile = Stockpile::new(config());
        // Presignatures at the low mark: no more of them, but more triples (they survive).
        let levels = StockLevels {
            triples: 16,
            presignatures: 2,
            ..Default::default()
        };
        assert_eq!(
            stockpile.plan(levels, Phase::Resharing),
            vec![Start::Triples(8), Start::Triples(4)]
        );
        // Serving, below the low mark, the triples become presignatures.
        let mut stockpile = Stockpile::new(config());
        let serving = StockLevels {
            presignatures: 1,
            ..levels
        };
        assert_eq!(
            stockpile.plan(serving, Phase::Serving),
            vec![Start::Presignature, Start::Presignature]
        );
    }

    #[test]
    fn nothing_starts_while_the_budget_is_used() {
        let mut stockpile = Stockpile::new(config());
        let busy = StockLevels {
            generations_running: 2,
            ..Default::default()
        };
        assert!(stockpile.plan(busy, Phase::Serving).is_empty());
    }

    proptest! {
        /// Whatever the levels: never more starts than the budget allows, never a
        /// presignature without two triples for it, never more stock than high watermarks
        /// (plus the triples presignatures still need).
        #[test]
        fn plans_respect_budget_triples_and_watermarks(
            triples in 0usize..40, triples_in_flight in 0usize..40,
            presignatures in 0usize..10, presignatures_in_flight in 0usize..10,
            generations_running in 0usize..4, calls in 1usize..4,
        ) {
            let c = config();
            let mut stockpile = Stockpile::new(c.clone());
            let levels = StockLevels { triples, triples_in_flight, presignatures, presignatures_in_flight, generations_running };
            for _ in 0..calls {
                let starts = stockpile.plan(levels, Phase::Serving);
                prop_assert!(starts.len() <= c.max_concurrent_generations.saturating_sub(generations_running));
                let presigs = starts.iter().filter(|s| **s == Start::Presignature).count();
                prop_assert!(2 * presigs <= triples);
                prop_assert!(presignatures + presignatures_in_flight + presigs <= c.presignatures_high.max(presignatures + presignatures_in_flight));
                let new_triples: usize = starts.iter().map(|s| if let Start::Triples(n) = s { *n } else { 0 }).sum();
                let triple_cap = c.triples_high + 2 * c.presignatures_high;
                prop_assert!(new_triples == 0 || triples + triples_in_flight + new_triples <= triple_cap);
            }
        }
    }
}
