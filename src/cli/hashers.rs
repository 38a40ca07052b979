//! `tessera hashers argon2 calibrate REQUESTS_PER_MINUTE`: finds argon2 memory and iterations
//! for which one hash takes just under `expected_duration` on this machine (as Kratos'
//! command does: memory first, then iterations), then hashes as many passwords at once as
//! the login rate makes concurrent and checks the time and the memory that takes.

use crate::config::{ByteSize, Dur, HashersConfig};
use std::time::{Duration, Instant};

/// Flags of `calibrate` (Kratos' names).
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateArgs {
    /// Login requests per minute the server should sustain.
    pub requests_per_minute: u32,
    /// Memory to start probing at (default: `hashers.argon2.memory`).
    #[arg(short = 'm', long, value_parser = ByteSize::parse)]
    pub start_memory: Option<ByteSize>,
    /// Most memory one hash may use (default: `hashers.argon2.dedicated_memory`).
    #[arg(long, value_parser = ByteSize::parse)]
    pub max_memory: Option<ByteSize>,
    /// Step by which memory changes while probing.
    #[arg(long, value_parser = ByteSize::parse, default_value = "32MB")]
    pub adjust_memory: ByteSize,
    /// Iterations to start probing at.
    #[arg(short = 'i', long, default_value_t = 1)]
    pub start_iterations: u32,
    /// Hashes per probe; the median counts.
    #[arg(short = 'r', long, default_value_t = 2)]
    pub runs: usize,
    /// Target time of one hash (default: `hashers.argon2.expected_duration`).
    #[arg(long, value_parser = Dur::parse)]
    pub expected_duration: Option<Dur>,
    /// Lanes (default: `hashers.argon2.parallelism`).
    #[arg(long)]
    pub parallelism: Option<u32>,
}

/// Runs the calibration; progress goes to stderr, the result (TOML) to stdout.
pub fn calibrate(base: &HashersConfig, args: &CalibrateArgs) -> Result<(), String> {
    let result = search(base, args, &mut |line| eprintln!("{line}"))?;
    print!("{}", result.toml());
    Ok(())
}

/// What calibration settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    pub memory: ByteSize,
    pub iterations: u32,
    pub parallelism: u32,
    /// The median time of one hash with these parameters.
    pub took: Duration,
    /// Hashes running at once at the requested rate.
    pub concurrent: u64,
    /// The slowest of `concurrent` hashes started together.
    pub slowest_concurrent: Duration,
    /// Whether `concurrent` hashes fit `dedicated_memory`.
    pub fits_memory: bool,
}

impl Calibrated {
    /// The `[hashers.argon2]` section to put in tessera.toml.
    pub fn toml(&self) -> String {
        format!(
            "[hashers.argon2]\nmemory = \"{}\"\niterations = {}\nparallelism = {}\n",
            self.memory, self.iterations, self.parallelism
        )
    }
}

/// The search itself; `log` receives progress lines.
pub fn search(base: &HashersConfig, args: &CalibrateArgs, log: &mut dyn FnMut(String)) -> Result<Calibrated, String> {
    let mut config = base.clone();
    config.algorithm = crate::config::HashAlgorithm::Argon2;
    let a = &mut config.argon2;
    if let Some(m) = args.start_memory {
        a.memory = m;
    }
    if let Some(p) = args.parallelism {
        a.parallelism = p;
    }
    a.iterations = args.start_iterations.max(1);
    let target = args.expected_duration.map_or(a.expected_duration.0, |d| d.0);
    let max_memory = args.max_memory.unwrap_or(a.dedicated_memory).0;
    let mut step = args.adjust_memory.0.max(1 << 10);
    let runs = args.runs.max(1);
    let probe = |c: &HashersConfig, log: &mut dyn FnMut(String)| -> Result<Duration, String> {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            crate::hash::hash_once(c, b"password").map_err(|e| e.to_string())?;
            times.push(start.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        log(format!(
            "  took {median:?} with {} of memory and {} iterations",
            ByteSize(c.argon2.memory.0),
            c.argon2.iterations
        ));
        Ok(median)
    };

    log(format!("Increasing memory to get over {target:?}:"));
    loop {
        if config.argon2.memory.0 > max_memory {
            log("  reached the memory limit".into());
            config.argon2.memory = ByteSize(max_memory);
            break;
        }
        if probe(&config, log)? > target {
            break;
        }
        config.argon2.memory.0 += step;
    }
    log(format!("Decreasing memory to get under {target:?}:"));
    let mut took = probe(&config, log)?;
    while took >= target {
        while config.argon2.memory.0 <= step && step > 1 << 10 {
            step /= 2;
        }
        if config.argon2.memory.0 <= step {
            break;
        }
        config.argon2.memory.0 -= step;
        took = probe(&config, log)?;
    }
    log(format!("Settled on {} of memory.", config.argon2.memory));

    log(format!("Increasing iterations to get over {target:?}:"));
    loop {
        took = probe(&config, log)?;
        if took > target {
            break;
        }
        config.argon2.iterations += 1;
    }
    log(format!("Decreasing iterations to get under {target:?}:"));
    while took >= target && config.argon2.iterations > 1 {
        config.argon2.iterations -= 1;
        took = probe(&config, log)?;
    }
    log(format!("Settled on {} iterations.", config.argon2.iterations));

    // At the requested rate, this many hashes overlap.
    let per_second = f64::from(args.requests_per_minute) / 60.0;
    let concurrent = ((per_second * took.as_secs_f64()).ceil() as u64).max(1);
    let fits_memory = concurrent.saturating_mul(config.argon2.memory.0) <= config.argon2.dedicated_memory.0;
    log(format!(
        "At {} requests per minute about {concurrent} hashes run at once; hashing {concurrent} together:",
        args.requests_per_minute
    ));
    let slowest_concurrent = concurrent_probe(&config, concurrent.min(64) as usize)?;
    log(format!("  the slowest took {slowest_concurrent:?}"));
    if !fits_memory {
        log(format!(
            "Warning: {concurrent} hashes at once need {} of memory, more than dedicated_memory ({}).",
            ByteSize(concurrent.saturating_mul(config.argon2.memory.0)),
            config.argon2.dedicated_memory
        ));
    }
    if slowest_concurrent > target + config.argon2.expected_deviation.0 {
        log(format!(
            "Warning: under that load a hash takes {slowest_concurrent:?}, longer than expected_duration + \
             expected_deviation ({:?}); this machine needs more cores or cheaper parameters.",
            target + config.argon2.expected_deviation.0
        ));
    }
    Ok(Calibrated {
        memory: config.argon2.memory,
        iterations: config.argon2.iterations,
        parallelism: config.argon2.parallelism,
        took,
        concurrent,
        slowest_concurrent,
        fits_memory,
    })
}

/// Starts `n` hashes together on their own threads; the slowest one's time.
fn concurrent_probe(config: &HashersConfig, n: usize) -> Result<Duration, String> {
    let results: Vec<Result<Duration, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    crate::hash::hash_once(config, b"password").map(|_| start.elapsed()).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a hashing thread panicked".into()))).collect()
    });
    let mut slowest = Duration::ZERO;
    for r in results {
        slowest = slowest.max(r?);
    }
    Ok(slowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_just_under_the_target() -> Result<(), String> {
        let mut base = HashersConfig::default();
        base.argon2.parallelism = 1;
        let args = CalibrateArgs {
            requests_per_minute: 600,
            start_memory: Some(ByteSize(1 << 20)),
            max_memory: Some(ByteSize(64 << 20)),
            adjust_memory: ByteSize(1 << 20),
            start_iterations: 1,
            runs: 1,
            expected_duration: Some(Dur(Duration::from_millis(15))),
            parallelism: None,
        };
        let mut lines = Vec::new();
        let c = search(&base, &args, &mut |l| lines.push(l))?;
        // Just under the target, unless one iteration measured slower (a loaded machine: the
        // search stops at one iteration).
        assert!(c.took < Duration::from_millis(15) || c.iterations == 1, "{c:?}");
        assert!(c.memory.0 >= 1 << 20 && c.memory.0 <= 64 << 20, "{c:?}");
        assert!(c.iterations >= 1);
        assert!(c.concurrent >= 1);
        assert!(lines.iter().any(|l| l.starts_with("Settled on")), "{lines:?}");
        assert!(c.toml().starts_with("[hashers.argon2]\nmemory = \""), "{}", c.toml());
        let back: toml::Table = toml::from_str(&c.toml()).map_err(|e| e.to_string())?;
        assert_eq!(back["hashers"]["argon2"]["iterations"].as_integer(), Some(i64::from(c.iterations)));
        Ok(())
    }
}
