//! A seeded isolation forest (Liu, Ting and Zhou, 2008) with per-feature attribution.
//!
//! Each tree splits a random subsample on a random feature at a random value between that feature's minimum and
//! maximum, until every point is alone or a depth limit is reached. Outliers are isolated near the root: the mean
//! path length `E[h(x)]` over the trees, normalised by `c(ψ)` (the mean path of an unsuccessful search in a binary
//! search tree of the subsample size), gives the score `2^(-E[h(x)] / c(ψ))`: near 1 for outliers, around 0.5 and
//! below for ordinary points.
//!
//! A point outside the range a node's training points span on the node's split feature would, had it been in
//! the sample, been cut off there with probability (distance outside) / (range including it). Plain isolation
//! forests ignore this and score a point far beyond the data like the most extreme training point (so 500
//! distinct ids look no stranger than the busiest ordinary 7); here the path length is the expectation over
//! that chance at every node on the path, which leaves points within the data's range scored exactly as usual.
//!
//! Everything random comes from one seeded generator, so the same data and seed give the same forest and the same
//! scores on every machine and every replay (the `extended-isolation-forest` crate seeds from the thread RNG and
//! cannot). Attribution is counterfactual: a feature's share is how much the score drops when that feature alone
//! is put back to its training median, which names the feature that made a point unusual in terms a person can
//! check ("with bytes at their median, the score would be 0.48 instead of 0.83").

/// Training parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForestConfig {
    /// Number of trees. 100 is the paper's default; scores settle well before.
    pub trees: usize,
    /// Subsample size ψ per tree. 256 is the paper's default.
    pub sample_size: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self { trees: 100, sample_size: 256, seed: 0x5eed_a7a5 }
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): small, fast, and good enough for sampling and split choices.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in [0, n); 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// A node: a split (`feature != LEAF`) or a leaf holding `size` training points. A split keeps the range
/// `[lo, hi]` its points span on its feature.
#[derive(Clone, Copy, Debug)]
struct Node {
    feature: u16,
    size: u32,
    left: u32,
    right: u32,
    value: f64,
    lo: f64,
    hi: f64,
}

const LEAF: u16 = u16::MAX;

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

/// A trained forest over points of `D` features.
#[derive(Clone, Debug)]
pub struct IsolationForest<const D: usize> {
    trees: Vec<Tree>,
    /// `c(ψ)` of the subsample size used.
    norm: f64,
    medians: [f64; D],
    spreads: [f64; D],
}

/// `c(n)`: the mean path length of an unsuccessful search in a binary search tree of `n` points.
fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl<const D: usize> IsolationForest<D> {
    /// A forest trained on `data`; `None` if `data` is empty or holds a value that is not finite.
    pub fn train(data: &[[f64; D]], config: &ForestConfig) -> Option<Self> {
        if data.is_empty() || D == 0 || data.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let mut rng = SplitMix64::new(config.seed);
        let psi = config.sample_size.clamp(2, data.len().max(2)).min(data.len());
        let depth_limit = (psi.max(2) as f64).log2().ceil() as usize;
        let mut indices: Vec<usize> = (0..data.len()).collect();
        let trees = (0..config.trees.max(1))
            .map(|_| {
                // A partial Fisher-Yates shuffle: the first psi indices are a uniform sample without replacement.
                for i in 0..psi {
                    let j = i + rng.below(indices.len() - i);
                    indices.swap(i, j);
                }
                let mut sample = indices[..psi].to_vec();
                let mut nodes = Vec::with_capacity(2 * psi);
                build(data, &mut sample, 0, depth_limit, &mut rng, &mut nodes);
                Tree { nodes }
            })
            .collect();
        let (medians, spreads) = robust_stats(data);
        Some(Self { trees, norm: c(psi).max(1.0), medians, spreads })
    }

    /// The anomaly score of `x`, in (0, 1]: about 0.5 or below for ordinary points, towards 1 for outliers.
    pub fn score(&self, x: &[f64; D]) -> f64 {
        let total: f64 = self.trees.iter().map(|t| path_length(t, x)).sum();
        let mean = total / self.trees.len() as f64;
        2f64.powf(-mean / self.norm)
    }

    /// Per feature, how much the score drops when that feature alone is set to its training median (never
    /// negative). The largest names the feature that makes `x` unusual.
    pub fn attribution(&self, x: &[f64; D]) -> [f64; D] {
        let base = self.score(x);
        let mut out = [0.0; D];
        for (f, slot) in out.iter_mut().enumerate() {
            let mut y = *x;
            y[f] = self.medians[f];
            *slot = (base - self.score(&y)).max(0.0);
        }
        out
    }

    /// The training median of feature `f`.
    pub fn median(&self, f: usize) -> f64 {
        self.medians.get(f).copied().unwrap_or(0.0)
    }

    /// The training spread of feature `f` (see `robust_stats`), floored so that a constant feature does not
    /// divide by zero.
    pub fn spread(&self, f: usize) -> f64 {
        self.spreads.get(f).copied().unwrap_or(1.0)
    }

    /// Bytes held by the trees.
    pub fn heap_bytes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.capacity() * std::mem::size_of::<Node>()).sum::<usize>()
            + self.trees.capacity() * std::mem::size_of::<Tree>()
    }
}

/// Builds the subtree of `sample` at `depth` into `nodes`; returns its root's index.
fn build<const D: usize>(
    data: &[[f64; D]],
    sample: &mut [usize],
    depth: usize,
    limit: usize,
    rng: &mut SplitMix64,
    nodes: &mut Vec<Node>,
) -> u32 {
    let at = nodes.len() as u32;
    nodes.push(Node { feature: LEAF, size: sample.len() as u32, left: 0, right: 0, value: 0.0, lo: 0.0, hi: 0.0 });
    if depth >= limit || sample.len() <= 1 {
        return at;
    }
    // Features along which the sample still varies; a sample of identical points is a leaf.
    let mut ranges = [(0.0f64, 0.0f64); D];
    let mut varying = Vec::with_capacity(D);
    for (f, range) in ranges.iter_mut().enumerate() {
        let (lo, hi) = sample
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| (lo.min(data[i][f]), hi.max(data[i][f])));
        *range = (lo, hi);
        if hi > lo {
            varying.push(f);
        }
    }
    if varying.is_empty() {
        return at;
    }
    let feature = varying[rng.below(varying.len())];
    let (lo, hi) = ranges[feature];
    let value = lo + rng.next_f64() * (hi - lo);
    // Partition in place: points below the split first.
    let mut split = 0;
    for i in 0..sample.len() {
        if data[sample[i]][feature] < value {
            sample.swap(i, split);
            split += 1;
        }
    }
    // `value` is >= lo and < hi, so both sides are non-empty unless value == lo exactly.
    let split = split.max(1).min(sample.len() - 1);
    let (below, above) = sample.split_at_mut(split);
    let left = build(data, below, depth + 1, limit, rng, nodes);
    let right = build(data, above, depth + 1, limit, rng, nodes);
    let size = (below.len() + above.len()) as u32;
    nodes[at as usize] = Node { feature: feature as u16, size, left, right, value, lo, hi };
    at
}

/// The expected path length of `x`: at each split where `x` lies outside the node's range, the chance that a
/// split drawn over the range including `x` would have cut it off right there ends the path early.
fn path_length<const D: usize>(tree: &Tree, x: &[f64; D]) -> f64 {
    let mut at = 0usize;
    let mut depth = 0.0;
    let mut expected = 0.0;
    let mut still = 1.0;
    loop {
        let node = tree.nodes[at];
        if node.feature == LEAF {
            return expected + still * (depth + c(node.size as usize));
        }
        let v = x[usize::from(node.feature)];
        let outside = (node.lo - v).max(v - node.hi).max(0.0);
        if outside > 0.0 {
            let cut = outside / (outside + node.hi - node.lo);
            expected += still * cut * (depth + 1.0);
            still *= 1.0 - cut;
        }
        at = if v < node.value { node.left } else { node.right } as usize;
        depth += 1.0;
    }
}

/// Per feature: the median, and a spread that is robust and also honest about long tails: the larger of the
/// median absolute deviation scaled to a standard deviation (1.4826 MAD) and the distance from the median to the
/// 99th percentile over 2.326 (where the 99th percentile of a normal distribution lies). For a feature that is
/// zero most of the time (errors) the MAD is zero; the tail term keeps a value ordinary traffic reaches now and
/// then from looking a thousand deviations out.
fn robust_stats<const D: usize>(data: &[[f64; D]]) -> ([f64; D], [f64; D]) {
    let mut medians = [0.0; D];
    let mut spreads = [1.0; D];
    let mut column: Vec<f64> = Vec::with_capacity(data.len());
    for f in 0..D {
        column.clear();
        column.extend(data.iter().map(|p| p[f]));
        column.sort_by(f64::total_cmp);
        let n = column.len();
        let median = column[n / 2];
        let q99 = column[(n * 99 / 100).min(n - 1)];
        for v in &mut column {
            *v = (*v - median).abs();
        }
        column.sort_by(f64::total_cmp);
        let mad = column[n / 2];
        medians[f] = median;
        spreads[f] = (1.4826 * mad).max((q99 - median) / 2.326).max(1e-3);
    }
    (medians, spreads)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points around (5, 10, 0.1, 3) with small noise, from a seeded generator.
    fn cluster(n: usize, seed: u64) -> Vec<[f64; 4]> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let mut p = [5.0, 10.0, 0.1, 3.0];
                for (i, v) in p.iter_mut().enumerate() {
                    // Sum of uniforms: roughly normal.
                    let noise: f64 = (0..4).map(|_| rng.next_f64() - 0.5).sum();
                    *v += noise * [1.0, 2.0, 0.05, 0.5][i];
                }
                p
            })
            .collect()
    }

    #[test]
    fn outliers_score_high_and_ordinary_points_do_not() {
        let data = cluster(2000, 1);
        let forest = IsolationForest::train(&data, &ForestConfig::default()).unwrap();
        let ordinary = forest.score(&[5.0, 10.0, 0.1, 3.0]);
        assert!(ordinary < 0.5, "{ordinary}");
        let typical: f64 = cluster(200, 2).iter().map(|p| forest.score(p)).sum::<f64>() / 200.0;
        assert!(typical < 0.5, "{typical}");
        let near = forest.score(&[5.0, 10.0, 0.1, 4.8]);
        let outlier = forest.score(&[5.0, 10.0, 0.1, 30.0]);
        assert!(outlier > 0.7, "{outlier}");
        assert!(near < outlier, "farther out is stranger: {near} {outlier}");
        assert!(forest.score(&[5.0, 10.0, 0.1, 3000.0]) > outlier);
        assert!(forest.score(&[50.0, 100.0, 2.0, 30.0]) > outlier);
    }

    #[test]
    fn attribution_names_the_feature_that_was_changed() {
        let data = cluster(2000, 3);
        let forest = IsolationForest::train(&data, &ForestConfig::default()).unwrap();
        for f in 0..4 {
            let mut x = [5.0, 10.0, 0.1, 3.0];
            x[f] += [8.0, 16.0, 0.5, 4.0][f];
            let a = forest.attribution(&x);
            let top = (0..4).max_by(|&i, &j| a[i].total_cmp(&a[j])).unwrap();
            assert_eq!(top, f, "{a:?}");
            assert!(a[f] > 0.15, "{a:?}");
        }
        assert!((forest.median(1) - 10.0).abs() < 0.2);
        assert!(forest.spread(1) > 0.2 && forest.spread(1) < 1.5, "{}", forest.spread(1));
    }

    #[test]
    fn the_same_seed_gives_the_same_forest_another_seed_another() {
        let data = cluster(1000, 4);
        let x = [6.0, 12.0, 0.2, 3.5];
        let a = IsolationForest::train(&data, &ForestConfig::default()).unwrap().score(&x);
        let b = IsolationForest::train(&data, &ForestConfig::default()).unwrap().score(&x);
        assert_eq!(a.to_bits(), b.to_bits());
        let other = ForestConfig { seed: 99, ..ForestConfig::default() };
        let c = IsolationForest::train(&data, &other).unwrap().score(&x);
        assert_ne!(a.to_bits(), c.to_bits());
        assert!((a - c).abs() < 0.1, "a different seed, about the same verdict");
    }

    #[test]
    fn degenerate_inputs() {
        assert!(IsolationForest::<2>::train(&[], &ForestConfig::default()).is_none());
        assert!(IsolationForest::train(&[[1.0, f64::NAN]], &ForestConfig::default()).is_none());
        // Identical points: every tree is one leaf; the score is defined and the same for everything.
        let same = vec![[1.0, 2.0]; 50];
        let f = IsolationForest::train(&same, &ForestConfig::default()).unwrap();
        assert!(f.score(&[1.0, 2.0]).is_finite());
        assert_eq!(f.score(&[1.0, 2.0]), f.score(&[100.0, -5.0]));
        let small = IsolationForest::train(
            &[[0.0], [1.0], [2.0]],
            &ForestConfig { sample_size: 256, ..ForestConfig::default() },
        );
        assert!(small.is_some());
        assert!(c(256) > 10.0 && c(256) < 11.0);
    }
}
