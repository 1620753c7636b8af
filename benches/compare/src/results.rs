//! Result files: the extra metrics a bench records beside criterion's
//! timings (token requests per stampede, CPU time per exchange), and the
//! reader of criterion's own estimates, both used by the `report` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The target directory criterion writes to (`$CARGO_TARGET_DIR`, or the
/// package's own `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Where the extra metrics go.
pub fn extra_dir() -> PathBuf {
    target_dir().join("bench-extra")
}

/// One extra measurement series of one contender.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Series {
    /// Every observation, in order.
    pub values: Vec<f64>,
    /// What one value is (`requests`, `ns/exchange`, …).
    pub unit: String,
}

impl Series {
    /// The median, or NaN when empty.
    pub fn median(&self) -> f64 {
        quantile(&self.values, 0.5)
    }

    /// The smallest value, or NaN.
    pub fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::NAN, f64::min)
    }

    /// The largest value, or NaN.
    pub fn max(&self) -> f64 {
        self.values.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// The `q` quantile (0..=1) by linear interpolation, NaN for no values.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Extra metrics keyed by `group/id` then metric name.
pub type Extras = BTreeMap<String, BTreeMap<String, Series>>;

/// Collects extra metrics of one bench binary and writes them to
/// `target/bench-extra/<name>.json`.
pub struct Recorder {
    name: &'static str,
    extras: Mutex<Extras>,
}

impl Recorder {
    /// An empty recorder for the bench `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            extras: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one observation of `metric` for the benchmark `id`.
    pub fn push(&self, id: &str, metric: &str, unit: &str, value: f64) {
        let mut extras = self.extras.lock().unwrap_or_else(|e| e.into_inner());
        let series = extras
            .entry(id.to_owned())
            .or_default()
            .entry(metric.to_owned())
            .or_default();
        series.unit = unit.to_owned();
        series.values.push(value);
    }

    /// The series recorded so far for `id` and `metric`.
    pub fn series(&self, id: &str, metric: &str) -> Series {
        let extras = self.extras.lock().unwrap_or_else(|e| e.into_inner());
        extras
            .get(id)
            .and_then(|m| m.get(metric))
            .cloned()
            .unwrap_or_default()
    }

    /// Merges what was recorded into the result file (other ids in the file
    /// are kept, so a filtered run updates only what it ran).
    pub fn save(&self) {
        let path = extra_dir().join(format!("{}.json", self.name));
        let mut all: Extras = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let extras = self.extras.lock().unwrap_or_else(|e| e.into_inner());
        for (id, metrics) in extras.iter() {
            all.insert(id.clone(), metrics.clone());
        }
        let _ = std::fs::create_dir_all(extra_dir());
        match serde_json::to_vec_pretty(&all) {
            Ok(bytes) => {
                if let Err(e) = std::fs::write(&path, bytes) {
                    eprintln!("could not write {}: {e}", path.display());
                }
            }
            Err(e) => eprintln!("could not encode extras: {e}"),
        }
    }
}

/// Reads every `target/bench-extra/*.json`.
pub fn read_extras() -> Extras {
    let mut all = Extras::new();
    let Ok(dir) = std::fs::read_dir(extra_dir()) else {
        return all;
    };
    for entry in dir.flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        if let Ok(extras) = serde_json::from_slice::<Extras>(&bytes) {
            all.extend(extras);
        }
    }
    all
}

/// A point estimate with its confidence interval, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Estimate {
    /// The point estimate.
    pub point: f64,
    /// Lower bound of the 95% confidence interval.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// One criterion benchmark's result.
#[derive(Clone, Debug)]
pub struct Timing {
    /// `group/function/value`.
    pub id: String,
    /// The median time per iteration, with its confidence interval.
    pub median: Estimate,
    /// The mean.
    pub mean: Estimate,
}

#[derive(Deserialize)]
struct BenchmarkJson {
    full_id: String,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct EstimateJson {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct EstimatesJson {
    mean: EstimateJson,
    median: EstimateJson,
}

impl From<EstimateJson> for Estimate {
    fn from(e: EstimateJson) -> Self {
        Self {
            point: e.point_estimate,
            lower: e.confidence_interval.lower_bound,
            upper: e.confidence_interval.upper_bound,
        }
    }
}

/// Reads every `target/criterion/**/new/{benchmark,estimates}.json`.
pub fn read_criterion() -> BTreeMap<String, Timing> {
    let mut out = BTreeMap::new();
    let root = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"));
    walk(&root, &mut |dir| {
        if dir.file_name().is_none_or(|n| n != "new") {
            return;
        }
        let Some(bench) = read_json::<BenchmarkJson>(&dir.join("benchmark.json")) else {
            return;
        };
        let Some(est) = read_json::<EstimatesJson>(&dir.join("estimates.json")) else {
            return;
        };
        out.insert(
            bench.full_id.clone(),
            Timing {
                id: bench.full_id,
                median: est.median.into(),
                mean: est.mean.into(),
            },
        );
    });
    out
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path)) {
    f(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), f);
        }
    }
}
