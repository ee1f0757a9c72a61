//! numpy's legacy `RandomState` (MT19937), enough to reproduce `RandomState(seed).permutation(n)`
//! and pandas' `DataFrame.sample(frac=1, random_state=seed)` bit for bit.
//!
//! PanDerm's `percent_data` subset (`linear_eval.py`) is the train split shuffled by
//! `df.sample(frac=1, random_state=42)`. This module ports exactly the numpy code that call
//! reaches (numpy 2.x sources; unchanged since the 1.17 `RandomState` rewrite):
//!
//! * `RandomState(int)` → `_MT19937._legacy_seeding` → `mt19937_seed(state, seed)`: Knuth's
//!   `init_genrand` (not `init_by_array`; only array seeds use that, see [`Mt19937::from_key`]);
//! * `RandomState.permutation(n)` → `arange(n)` then `shuffle` → `_shuffle_raw`: for `i` from
//!   `n - 1` down to 1, `j = random_interval(i)`, swap `x[i]` and `x[j]`;
//! * `random_interval(max)` (`distributions.c`): mask = the smallest `2^k - 1 ≥ max`, then draw
//!   `next_uint32() & mask` (or `next_uint64()` when `max > 2^32 - 1`) until it is `≤ max`;
//! * pandas (`core/sample.py::sample`) calls `RandomState(seed).choice(n, size=n,
//!   replace=False)`, and the legacy `choice` without `p` is `permutation(n)[:size]`.
//!
//! The golden test data come from `scripts/reference_permutation.py`.

/// Number of 32-bit words in the MT19937 state.
const N: usize = 624;
/// MT19937 middle word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The MT19937 generator with numpy's legacy (`RandomState`) seeding and output functions.
#[derive(Clone)]
pub struct Mt19937 {
    key: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937").field("pos", &self.pos).field("key[0..4]", &&self.key[..4]).finish()
    }
}

impl Mt19937 {
    /// The state of `numpy.random.RandomState(seed)` for an integer seed (`mt19937_seed`, the
    /// reference `init_genrand`). numpy accepts integer seeds in `0..=2^32 - 1`, i.e. any `u32`.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        key[0] = seed;
        for i in 1..N {
            let prev = key[i - 1];
            key[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { key, pos: N }
    }

    /// The state of `numpy.random.RandomState(array)` for a 1-D array seed (`init_by_array`).
    /// Returns `None` for an empty array, which numpy rejects ("Seed must be non-empty").
    pub fn from_key(init_key: &[u32]) -> Option<Self> {
        if init_key.is_empty() {
            return None;
        }
        // `mt19937_init_by_array` starts from `init_genrand(19650218)` and keeps its `pos`.
        let mut state = Mt19937::new(19_650_218);
        let mt = &mut state.key;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(init_key.len()) {
            let prev = mt[i - 1];
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(init_key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= init_key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1];
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Some(state)
    }

    /// The raw state words (numpy's `get_state()[1]`).
    pub fn key(&self) -> &[u32; N] {
        &self.key
    }

    /// The position in the state (numpy's `get_state()[2]`); 624 right after seeding.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Regenerates the 624 state words (`mt19937_gen`).
    fn generate(&mut self) {
        let mt = &mut self.key;
        let twist = |a: u32, b: u32| {
            let y = (a & UPPER_MASK) | (b & LOWER_MASK);
            (y >> 1) ^ (0u32.wrapping_sub(y & 1) & MATRIX_A)
        };
        for i in 0..N - M {
            mt[i] = mt[i + M] ^ twist(mt[i], mt[i + 1]);
        }
        for i in N - M..N - 1 {
            mt[i] = mt[i + M - N] ^ twist(mt[i], mt[i + 1]);
        }
        mt[N - 1] = mt[M - 1] ^ twist(mt[N - 1], mt[0]);
        self.pos = 0;
    }

    /// The next tempered 32-bit output (`mt19937_next32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// The next 64-bit output (`mt19937_next64`): the first 32-bit draw is the high word.
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }

    /// A uniform integer in `0..=max` by numpy's legacy masked rejection sampling
    /// (`random_interval` in `distributions.c`); `max == 0` consumes no output.
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// Shuffles `items` in place exactly as the legacy `RandomState.shuffle` does for a 1-D
    /// array (`_shuffle_raw`: Fisher–Yates from the last element down).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // `random_interval(i) ≤ i`, and `i` is a valid index, so the cast back cannot truncate.
            let j = self.random_interval(i as u64) as usize;
            items.swap(i, j);
        }
    }
}

/// `numpy.random.RandomState(seed).permutation(n)`.
pub fn permutation(seed: u32, n: usize) -> Vec<usize> {
    let mut items: Vec<usize> = (0..n).collect();
    Mt19937::new(seed).shuffle(&mut items);
    items
}

/// The positional row order of pandas' `df.sample(frac=1, random_state=seed)` on an `n`-row
/// frame: pandas draws `RandomState(seed).choice(n, size=n, replace=False)`, which numpy's legacy
/// `choice` computes as `permutation(n)[:n]`, so this equals [`permutation`] (verified against
/// numpy 2.4.6 / pandas 3.1.1 by `scripts/reference_permutation.py`).
pub fn pandas_sample_order(seed: u32, n: usize) -> Vec<usize> {
    permutation(seed, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    fn golden() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/numpy_permutation_golden.json");
        let text = std::fs::read_to_string(path).expect("golden file (scripts/reference_permutation.py)");
        serde_json::from_str(&text).expect("golden JSON")
    }

    fn u64s(v: &Value) -> Vec<u64> {
        v.as_array().expect("array").iter().map(|x| x.as_u64().expect("u64")).collect()
    }

    fn sha256_le(values: impl IntoIterator<Item = u64>) -> String {
        let mut h = Sha256::new();
        for v in values {
            h.update(v.to_le_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Checks `got` against one golden entry (full list, or head/tail/sum/hash).
    fn check_entry(entry: &Value, got: &[usize], what: &str) {
        let got: Vec<u64> = got.iter().map(|&v| v as u64).collect();
        assert_eq!(got.len() as u64, entry["len"].as_u64().expect("len"), "{what}: length");
        if let Some(full) = entry.get("full") {
            assert_eq!(got, u64s(full), "{what}: full permutation");
        } else {
            let head = u64s(&entry["head"]);
            let tail = u64s(&entry["tail"]);
            assert_eq!(&got[..head.len()], &head[..], "{what}: head");
            assert_eq!(&got[got.len() - tail.len()..], &tail[..], "{what}: tail");
        }
        assert_eq!(got.iter().sum::<u64>(), entry["sum"].as_u64().expect("sum"), "{what}: sum");
        assert_eq!(sha256_le(got.iter().copied()), entry["sha256"].as_str().expect("sha256"), "{what}: sha256");
    }

    fn seed_n(entry: &Value) -> (u32, usize) {
        let seed = u32::try_from(entry["seed"].as_u64().expect("seed")).expect("u32 seed");
        (seed, entry["n"].as_u64().expect("n") as usize)
    }

    #[test]
    fn permutation_matches_numpy() {
        let g = golden();
        let cases = g["permutations"].as_array().expect("permutations");
        let ns: Vec<usize> = cases.iter().map(|e| seed_n(e).1).collect();
        for n in [0, 1, 2, 3, 10, 100, 1000, 8207, 100000] {
            assert!(ns.contains(&n), "golden lacks n = {n}");
        }
        for entry in cases {
            let (seed, n) = seed_n(entry);
            check_entry(entry, &permutation(seed, n), &format!("permutation(seed={seed}, n={n})"));
        }
    }

    #[test]
    fn pandas_sample_order_matches_pandas() {
        let g = golden();
        for entry in g["pandas_sample"].as_array().expect("pandas_sample") {
            let (seed, n) = seed_n(entry);
            check_entry(entry, &pandas_sample_order(seed, n), &format!("pandas sample(seed={seed}, n={n})"));
        }
    }

    #[test]
    fn seeding_matches_numpy_state() {
        let g = golden();
        for entry in g["seeding"].as_array().expect("seeding") {
            let state = match &entry["seed"] {
                Value::Array(words) => {
                    let key: Vec<u32> = words.iter().map(|w| w.as_u64().expect("word") as u32).collect();
                    Mt19937::from_key(&key).expect("non-empty key")
                }
                seed => Mt19937::new(seed.as_u64().expect("seed") as u32),
            };
            let what = format!("seed {}", entry["seed"]);
            assert_eq!(state.pos() as u64, entry["pos"].as_u64().expect("pos"), "{what}: pos");
            let head = u64s(&entry["head"]);
            let key: Vec<u64> = state.key().iter().map(|&w| u64::from(w)).collect();
            assert_eq!(&key[..head.len()], &head[..], "{what}: key head");
            assert_eq!(sha256_le(key.iter().copied()), entry["sha256"].as_str().expect("sha256"), "{what}: key sha256");
        }
    }

    #[test]
    fn reference_mt19937_output() {
        // The MT19937 reference (mt19937ar.c) with init_by_array({0x123, 0x234, 0x345, 0x456})
        // starts 1067595299 955945823 477289528 4107218783 4228976476.
        let mut rng = Mt19937::from_key(&[0x123, 0x234, 0x345, 0x456]).expect("non-empty key");
        let first: Vec<u32> = (0..5).map(|_| rng.next_u32()).collect();
        assert_eq!(first, [1_067_595_299, 955_945_823, 477_289_528, 4_107_218_783, 4_228_976_476]);
        assert!(Mt19937::from_key(&[]).is_none());
    }

    #[test]
    fn random_interval_stays_in_range() {
        let mut rng = Mt19937::new(7);
        assert_eq!(rng.random_interval(0), 0);
        assert_eq!(rng.pos(), N, "max = 0 draws nothing");
        for max in [1u64, 2, 5, 255, 256, 1 << 31, u64::from(u32::MAX), 1 << 40, u64::MAX] {
            for _ in 0..200 {
                assert!(rng.random_interval(max) <= max);
            }
        }
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(42, 5000);
        p.sort_unstable();
        assert!(p.iter().enumerate().all(|(i, &v)| i == v));
    }
}
