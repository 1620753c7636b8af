//! Prints the ratio table of the comparison benchmarks (Markdown), from the
//! results of the last `cargo bench` of this package.
//!
//!     cargo run --release --manifest-path benches/compare/Cargo.toml --bin report
//!     cargo run --release --manifest-path benches/compare/Cargo.toml --bin report -- --run
//!
//! `--run` first runs `cargo bench -j 1` of this package (every group).
//!
//! A ratio is the contender's median time over the baseline's median time,
//! measured in the same run; the range beside it divides the ends of the
//! two medians' 95% confidence intervals crosswise (the widest the ratio can
//! be given both intervals). CPU ratios use the medians of per-sample CPU
//! time per exchange, the range their quartiles crosswise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use compare::results::{self, Extras, Timing, quantile};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--run") {
        run_benches();
    }
    let timings = results::read_criterion();
    let extras = results::read_extras();
    if timings.is_empty() {
        eprintln!(
            "no criterion results under {}; run `cargo bench --manifest-path \
             benches/compare/Cargo.toml` first, or pass --run",
            results::target_dir().display()
        );
        std::process::exit(1);
    }
    let report = Report {
        timings: &timings,
        extras: &extras,
    };
    print!("{}", report.render());
}

fn run_benches() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["bench", "-j", "1", "--manifest-path", manifest]);
    // `cargo run` exports its package's variables and a library path; left
    // in place they change build-script fingerprints and force a rebuild.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "LD_LIBRARY_PATH"
            );
        if set_by_cargo_run {
            command.env_remove(name);
        }
    }
    let status = command.status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("cargo bench failed: {s}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("could not run cargo bench: {e}");
            std::process::exit(1);
        }
    }
}

struct Report<'a> {
    timings: &'a BTreeMap<String, Timing>,
    extras: &'a Extras,
}

/// A ratio with its range.
#[derive(Clone, Copy)]
struct Ratio {
    point: f64,
    lower: f64,
    upper: f64,
}

impl Ratio {
    fn show(self) -> String {
        format!("{:.2} ({:.2}–{:.2})", self.point, self.lower, self.upper)
    }
}

fn verdict(ratio: Option<Ratio>, target: f64, at_most: bool) -> String {
    let Some(r) = ratio else {
        return "not run".into();
    };
    let met = if at_most {
        r.point <= target
    } else {
        r.point >= target
    };
    if met {
        "met".into()
    } else if at_most {
        format!("missed by {:.0}%", (r.point / target - 1.0) * 100.0)
    } else {
        format!("missed ({:.2} < {target})", r.point)
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

impl Report<'_> {
    fn time(&self, id: &str) -> Option<&Timing> {
        self.timings.get(id)
    }

    fn ratio(&self, contender: &str, baseline: &str) -> Option<Ratio> {
        let c = self.time(contender)?.median;
        let b = self.time(baseline)?.median;
        Some(Ratio {
            point: c.point / b.point,
            lower: c.lower / b.upper,
            upper: c.upper / b.lower,
        })
    }

    fn extra(&self, id: &str, metric: &str) -> Option<&Vec<f64>> {
        let values = &self.extras.get(id)?.get(metric)?.values;
        (!values.is_empty()).then_some(values)
    }

    fn extra_ratio(&self, contender: &str, baseline: &str, metric: &str) -> Option<Ratio> {
        let c = self.extra(contender, metric)?;
        let b = self.extra(baseline, metric)?;
        Some(Ratio {
            point: quantile(c, 0.5) / quantile(b, 0.5),
            lower: quantile(c, 0.25) / quantile(b, 0.75),
            upper: quantile(c, 0.75) / quantile(b, 0.25),
        })
    }

    fn render(&self) -> String {
        let mut out = String::new();
        machine(&mut out);
        self.cached(&mut out);
        self.stampede(&mut out);
        self.exchange(&mut out);
        self.assertion(&mut out);
        out
    }

    fn row_ratio(
        &self,
        out: &mut String,
        label: &str,
        contender: &str,
        baseline: &str,
        target: Option<f64>,
    ) {
        let Some(time) = self.time(contender) else {
            return;
        };
        let ratio = self.ratio(contender, baseline);
        let shown = ratio.map(Ratio::show).unwrap_or_else(|| "–".into());
        let (target_text, met) = match target {
            Some(t) => (format!("≤ {t}"), verdict(ratio, t, true)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {shown} | {target_text} | {met} |",
            fmt_ns(time.median.point)
        );
    }

    fn cached(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Cached token read\n");
        let _ = writeln!(
            out,
            "Time for every task (thread) to read the token once; ratio to \
             `ArcSwap::load_full` with the same number of tasks (threads).\n"
        );
        let _ = writeln!(
            out,
            "| Contender | Time | Ratio to floor | Target | Result |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for n in [1, 2, 8, 64] {
            let g = "cached_read_tasks";
            let floor = format!("{g}/floor_load_full/{n}");
            let rows: [(&str, &str, Option<f64>); 6] = [
                ("floor_load", "floor_load", None),
                ("floor_load_full_now", "floor_load_full_now", None),
                ("ours_token", "ours_token", Some(1.5)),
                ("yup_oauth2", "yup_oauth2", None),
                ("gcp_auth", "gcp_auth", None),
                ("floor_authorize", "floor_authorize", None),
            ];
            self.row_ratio(
                out,
                &format!("{n} tasks: floor_load_full"),
                &floor,
                &floor,
                None,
            );
            for (label, name, target) in rows {
                let id = format!("{g}/{name}/{n}");
                self.row_ratio(out, &format!("{n} tasks: {label}"), &id, &floor, target);
            }
            self.row_ratio(
                out,
                &format!("{n} tasks: ours_token (to floor_load_full_now)"),
                &format!("{g}/ours_token/{n}"),
                &format!("{g}/floor_load_full_now/{n}"),
                None,
            );
            let authorize = format!("{g}/ours_authorize/{n}");
            let authorize_floor = format!("{g}/floor_authorize/{n}");
            self.row_ratio(
                out,
                &format!("{n} tasks: ours_authorize (to floor_authorize)"),
                &authorize,
                &authorize_floor,
                Some(2.0),
            );
        }
        for n in [1, 2, 8, 64] {
            let g = "cached_read_threads";
            let floor = format!("{g}/floor_load_full/{n}");
            self.row_ratio(
                out,
                &format!("{n} threads: floor_load_full"),
                &floor,
                &floor,
                None,
            );
            for (name, target) in [("floor_load", None), ("ours_blocking", Some(1.5))] {
                let id = format!("{g}/{name}/{n}");
                self.row_ratio(out, &format!("{n} threads: {name}"), &id, &floor, target);
            }
        }
        let _ = writeln!(
            out,
            "\nPeers against the floor for one caller (target: ≥ 5× slower than ours):\n"
        );
        let ours = "cached_read_tasks/ours_token/1";
        for peer in ["yup_oauth2", "gcp_auth"] {
            let id = format!("cached_read_tasks/{peer}/1");
            let ratio = self.ratio(&id, ours);
            let _ = writeln!(
                out,
                "- {peer} / ours_token: {} ({})",
                ratio.map(Ratio::show).unwrap_or_else(|| "not run".into()),
                verdict(ratio, 5.0, false)
            );
        }
    }

    fn stampede(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Stampede: 1000 callers\n");
        let _ = writeln!(
            out,
            "Token requests per run (median, min–max over all runs) and the \
             time until every caller holds a token, as a ratio to the \
             single-flight floor.\n"
        );
        let _ = writeln!(
            out,
            "| Scenario | Delay | Contender | Requests | Time | Ratio to floor | Target | Result |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for scenario in ["expired", "cold"] {
            for delay in [0, 20, 100] {
                let g = format!("stampede_{scenario}");
                let floor = format!("{g}/floor/{delay}");
                for name in ["floor", "ours", "yup_oauth2", "gcp_auth"] {
                    let id = format!("{g}/{name}/{delay}");
                    let Some(time) = self.time(&id) else {
                        continue;
                    };
                    let requests = self
                        .extra(&id, "requests")
                        .map(|v| {
                            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                            format!("{} ({min}–{max})", quantile(v, 0.5))
                        })
                        .unwrap_or_else(|| "–".into());
                    let ratio = self.ratio(&id, &floor);
                    let (target, met) = if name == "ours" {
                        let single = self
                            .extra(&id, "requests")
                            .is_some_and(|v| v.iter().all(|&r| r == 1.0));
                        let time_met = verdict(ratio, 1.05, true);
                        let met = match (single, time_met.as_str()) {
                            (true, "met") => "met".to_owned(),
                            (true, other) => format!("1 request; time {other}"),
                            (false, other) => format!("MORE THAN 1 request; time {other}"),
                        };
                        ("1 request, ≤ 1.05".to_owned(), met)
                    } else {
                        ("–".to_owned(), "–".to_owned())
                    };
                    let _ = writeln!(
                        out,
                        "| {scenario} | {delay} ms | {name} | {requests} | {} | {} | {target} | {met} |",
                        fmt_ns(time.median.point),
                        ratio.map(Ratio::show).unwrap_or_else(|| "–".into()),
                    );
                }
            }
        }
        let id = "stampede_real_expiry/ours/20";
        if let (Some(v), Some(r)) = (self.extra(id, "time"), self.extra(id, "requests")) {
            let floor = self
                .time("stampede_expired/floor/20")
                .map(|t| t.median.point / 1e6);
            let _ = writeln!(
                out,
                "\nReal expiry (ours, lifetime 1 s waited out, 20 ms delay): \
                 {:.3} ms until all served (median of {} runs; floor's expired \
                 run {}), token requests per run {:?}.",
                quantile(v, 0.5),
                v.len(),
                floor
                    .map(|f| format!("{f:.3} ms"))
                    .unwrap_or_else(|| "not run".into()),
                r
            );
        }
        let id = "stampede_refresh_ahead/ours/100";
        if let Some(v) = self.extra(id, "max_latency") {
            let _ = writeln!(
                out,
                "\nRefresh ahead of expiry (ours, 1000 callers, 100 ms delay): \
                 slowest caller {:.3} ms (median over runs; max {:.3} ms), \
                 token requests {} per run (max {}).",
                quantile(v, 0.5),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                self.extra(id, "requests")
                    .map(|r| quantile(r, 0.5))
                    .unwrap_or(f64::NAN),
                self.extra(id, "requests")
                    .map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
                    .unwrap_or(f64::NAN),
            );
        }
    }

    fn exchange(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Client-credentials exchange over loopback\n");
        let _ = writeln!(
            out,
            "Wall time for every task (thread) to finish one exchange, and the \
             client's CPU time per exchange, as ratios to the baseline.\n"
        );
        let _ = writeln!(
            out,
            "| Tasks | Contender | Baseline | Time | Wall ratio | CPU/exchange | CPU ratio | Target | Result |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        let rows: [(&str, &str, &str, Option<f64>); 4] = [
            ("exchange_tasks", "ours", "floor_reqwest", Some(1.05)),
            ("exchange_tasks", "oauth2", "floor_reqwest", None),
            (
                "exchange_threads",
                "ours_blocking",
                "reqwest_blocking",
                Some(0.5),
            ),
            ("exchange_tasks", "floor_reqwest", "floor_reqwest", None),
        ];
        for n in [1, 64] {
            for (g, name, base, target) in rows {
                let id = format!("{g}/{name}/{n}");
                let base_id = format!("{g}/{base}/{n}");
                let Some(time) = self.time(&id) else {
                    continue;
                };
                let wall = self.ratio(&id, &base_id);
                let cpu = self.extra_ratio(&id, &base_id, "cpu");
                let cpu_abs = self
                    .extra(&id, "cpu")
                    .map(|v| fmt_ns(quantile(v, 0.5)))
                    .unwrap_or_else(|| "–".into());
                let (target_text, met) = match target {
                    Some(t) => {
                        let wall_v = verdict(wall, t, true);
                        let cpu_v = verdict(cpu, t, true);
                        (
                            format!("≤ {t} (wall and CPU)"),
                            format!("wall {wall_v}; CPU {cpu_v}"),
                        )
                    }
                    None => ("–".into(), "–".into()),
                };
                let _ = writeln!(
                    out,
                    "| {n} | {name} | {base} | {} | {} | {cpu_abs} | {} | {target_text} | {met} |",
                    fmt_ns(time.median.point),
                    wall.map(Ratio::show).unwrap_or_else(|| "–".into()),
                    cpu.map(Ratio::show).unwrap_or_else(|| "–".into()),
                );
            }
            let id = format!("exchange_threads/reqwest_blocking/{n}");
            if let Some(time) = self.time(&id) {
                let cpu_abs = self
                    .extra(&id, "cpu")
                    .map(|v| fmt_ns(quantile(v, 0.5)))
                    .unwrap_or_else(|| "–".into());
                let _ = writeln!(
                    out,
                    "| {n} | reqwest_blocking | reqwest_blocking | {} | 1.00 | {cpu_abs} | 1.00 | – | – |",
                    fmt_ns(time.median.point)
                );
            }
        }
    }

    fn assertion(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Assertion building\n");
        let _ = writeln!(
            out,
            "One signed assertion; ratio to the pre-parsed-key floor.\n"
        );
        let _ = writeln!(
            out,
            "| Algorithm | Contender | Time | Ratio to floor | Target | Result |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for alg in ["RS256", "ES256", "EdDSA"] {
            let floor = format!("assertion/{alg}/floor");
            for (name, target) in [
                ("floor", None),
                ("sign_only", None),
                ("ours", Some(1.1)),
                ("jsonwebtoken_encode", None),
            ] {
                let id = format!("assertion/{alg}/{name}");
                let Some(time) = self.time(&id) else {
                    continue;
                };
                let ratio = self.ratio(&id, &floor);
                let (t, met) = match target {
                    Some(t) => (format!("≤ {t}"), verdict(ratio, t, true)),
                    None => ("–".into(), "–".into()),
                };
                let _ = writeln!(
                    out,
                    "| {alg} | {name} | {} | {} | {t} | {met} |",
                    fmt_ns(time.median.point),
                    ratio.map(Ratio::show).unwrap_or_else(|| "–".into()),
                );
            }
        }
    }
}

fn machine(out: &mut String) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(out, "## Benchmark report\n");
    let _ = writeln!(
        out,
        "Machine: {cpus} CPUs, {model}, {}.",
        std::env::consts::ARCH
    );
}
