//! One bench run: for every scenario and concurrency, the raw limits of the
//! scenario's steps, the ceiling, the server, and the raw limits again; then
//! the report and the targets.
//!
//! Every figure that is compared is measured close to what it is compared
//! with: the ceiling right before the server at the same concurrency, and the
//! raw limits on both sides of the pair, their mean making the floor. (This
//! machine's speed drifts by a fifth within a minute; limits measured once at
//! the start made later floors wrong, and limits measured on one side only
//! still followed the drift.)

use std::fmt::Write as _;
use std::time::Duration;

use crate::limits::{self, Limits, Step};
use crate::load::{self, Credentials, Flow, Load, Single};
use crate::process::{self, Lifetimes, Running};
use crate::{BENCH_PASSWORD, Error, procfs};

/// How long and how hard to run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Each load run (one scenario at one concurrency, ceiling or server).
    pub(crate) run_time: Duration,
    /// Each raw limit.
    pub(crate) limit_time: Duration,
    /// The concurrencies.
    pub(crate) levels: Vec<usize>,
    /// Run only the scenarios with these names (all when empty).
    pub(crate) only: Vec<String>,
}

/// How a scenario sends its load.
#[derive(Debug, Clone)]
enum Kind {
    Wrk(Single),
    Drive(Flow),
}

/// One benched route.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    kind: Kind,
    /// HTTP requests per counted unit.
    requests_per_unit: u32,
    /// The steps the route cannot avoid, once per unit.
    steps: &'static [Step],
}

/// One line of the report.
#[derive(Debug, Clone)]
struct Row {
    scenario: &'static str,
    level: usize,
    server: Load,
    cpu: Duration,
    peak_rss_kib: u64,
    ceiling: Option<Load>,
    /// The ceiling's CPU per request at this concurrency.
    ceiling_cpu: Duration,
    /// The raw limits of the scenario's steps, measured right before the
    /// ceiling's run and right after the server's.
    before: Limits,
    after: Limits,
    floor: Duration,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.ceiling.map(|c| self.server.per_second() / c.per_second().max(f64::EPSILON))
    }
    fn overhead(&self) -> f64 {
        self.cpu.as_secs_f64() / self.floor.as_secs_f64().max(f64::EPSILON)
    }
    /// The raw limits the floor uses: the mean of before and after.
    fn limits(&self) -> Limits {
        self.before.mean(&self.after)
    }
}

/// Runs the whole bench; returns the report and whether every run had zero
/// errors and produced every figure. Missed targets are reported, not failed:
/// on a shared machine one noisy run should not fail a build.
pub(crate) fn bench(settings: &Settings) -> Result<(String, bool), Error> {
    let dir = tempfile::tempdir()?;
    let hash = process::password_hash()?;
    let server = process::start_server(dir.path(), &hash, Lifetimes::DEFAULT)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut creds = credentials();
    let access_token = runtime.block_on(async {
        let single = password_single();
        let (_, _, body) = load::fetch(&server.base, &single).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Setup(e.to_string()))?;
        v["access_token"].as_str().map(str::to_owned).ok_or_else(|| Error::Setup("no access token".into()))
    })?;

    let mut rows: Vec<Row> = Vec::new();
    let all = scenarios(&access_token);
    if let Some(unknown) =
        settings.only.iter().find(|o| o.as_str() != STORES && !all.iter().any(|s| s.name == o.as_str()))
    {
        return Err(Error::Setup(format!("--only: no scenario {unknown:?}")));
    }
    let chosen = all.into_iter().filter(|s| settings.only.is_empty() || settings.only.iter().any(|o| o == s.name));
    // Raw limits, with the server idle: not while it still works off the
    // last run's queue.
    let raw = |steps: &[Step]| settle(server.pid()).and_then(|()| limits::measure(steps, settings.limit_time, &hash));
    for scenario in chosen {
        // The ceiling serves this route's real answer, captured from the server.
        let sample = match &scenario.kind {
            Kind::Wrk(single) => Some(runtime.block_on(load::fetch(&server.base, single))?),
            Kind::Drive(Flow::Refresh) => {
                let seed = runtime.block_on(load::password_grant(&server.base, &creds))?;
                Some(runtime.block_on(load::fetch(&server.base, &refresh_single(&seed)))?)
            }
            // The signing flows: the ceiling serves the real answer to the
            // same driver, which signs a proof or an assertion per request on
            // these cores for the ceiling as for the server.
            Kind::Drive(flow @ (Flow::DpopClientCredentials | Flow::AssertionClientCredentials)) => {
                Some(runtime.block_on(load::sample(*flow, &server.base, &creds, ""))?)
            }
            Kind::Drive(Flow::DpopUserinfo) => {
                let token = runtime.block_on(load::dpop_password_grant(&server.base, &creds))?;
                let sample = runtime.block_on(load::sample(Flow::DpopUserinfo, &server.base, &creds, &token))?;
                creds.dpop_token = token;
                Some(sample)
            }
            Kind::Drive(_) => None,
        };
        let ceiling = match &sample {
            Some((status, content_type, body)) if status.is_success() => {
                Some(process::start_ceiling(dir.path(), body, content_type)?)
            }
            Some((status, _, body)) => {
                return Err(Error::Setup(format!("{}: {status} {}", scenario.name, String::from_utf8_lossy(body))));
            }
            None => None,
        };
        for &level in &settings.levels {
            eprintln!("{} at {level}", scenario.name);
            let run = |target: &Running| measure(&runtime, dir.path(), target, &scenario, &creds, level, settings);
            let before = raw(scenario.steps)?;
            let ceiling_load = ceiling.as_ref().map(run).transpose()?;
            let (server_load, cpu) = run(&server)?;
            let after = raw(scenario.steps)?;
            let raw_mean = before.mean(&after);
            let unavoidable: Duration = scenario.steps.iter().filter_map(|&s| raw_mean.get(s)).map(|l| l.cpu).sum();
            // A flow has no ceiling of its own: its requests are priced at the
            // /token ceiling of client_credentials at this concurrency.
            let ceiling_cpu = match ceiling_load {
                Some((_, cpu)) => cpu,
                None => rows
                    .iter()
                    .find(|r| r.scenario == "client_credentials" && r.level == level)
                    .map_or(Duration::ZERO, |r| r.ceiling_cpu),
            };
            rows.push(Row {
                scenario: scenario.name,
                level,
                server: server_load,
                cpu,
                peak_rss_kib: procfs::memory_kib(server.pid(), "VmHWM")?,
                ceiling: ceiling_load.map(|(l, _)| l),
                ceiling_cpu,
                floor: ceiling_cpu * scenario.requests_per_unit + unavoidable,
                before,
                after,
            });
        }
    }
    let ok = rows.iter().all(|r| {
        r.server.errors == 0
            && r.server.units > 0
            && !r.cpu.is_zero()
            && r.ceiling.is_none_or(|c| c.errors == 0 && c.units > 0)
    });
    let mut out = report(&rows, &targets(&rows));
    let mut compared_ok = true;
    if settings.only.is_empty() || settings.only.iter().any(|o| o == STORES) {
        let compared = compare_stores(&runtime, dir.path(), &hash, &creds, &access_token, settings)?;
        compared_ok = compared.iter().all(|c| c.load.errors == 0 && c.load.units > 0);
        out.push_str(&stores_report(&compared));
    }
    Ok((out, ok && compared_ok))
}

/// The `--only` name of the store comparison.
const STORES: &str = "stores";

/// One run of the store comparison.
#[derive(Debug, Clone)]
struct Compared {
    scenario: &'static str,
    store: &'static str,
    load: Load,
    cpu: Duration,
}

/// sled at both durability levels, and PostgreSQL when
/// [`process::COMPARE_POSTGRES_VAR`] names one, at 32 connections: refresh
/// on sled `power` against `process`, and `client_credentials` and refresh
/// on sled `power` against PostgreSQL. Each is a fresh server, so none
/// carries the data of the scenarios before. The servers under comparison run
/// one after the other, alternating, twice (once for `--smoke`), so that the
/// ratios come from the same minutes of this noisy machine.
fn compare_stores(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    hash: &str,
    creds: &Credentials,
    access_token: &str,
    settings: &Settings,
) -> Result<Vec<Compared>, Error> {
    const LEVEL: usize = 32;
    let rounds = if settings.run_time < Duration::from_secs(2) { 1 } else { 2 };
    let all = scenarios(access_token);
    let find = |name: &str| all.iter().find(|s| s.name == name).cloned();
    let (Some(refresh), Some(cc)) = (find("refresh_token"), find("client_credentials")) else {
        return Err(Error::Setup("the comparison's scenarios are missing".into()));
    };
    let power_server =
        process::start_server_on(&dir.join("sled-power"), hash, Lifetimes::DEFAULT, &process::sled_table("power"))?;
    let power = &power_server;
    let process_server =
        process::start_server_on(&dir.join("sled-process"), hash, Lifetimes::DEFAULT, &process::sled_table("process"))?;
    let postgres = match std::env::var(process::COMPARE_POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => Some(process::start_server_on(
            &dir.join("postgres"),
            hash,
            Lifetimes::DEFAULT,
            &process::postgres_table(&url),
        )?),
        _ => None,
    };
    let mut runs = Vec::new();
    let mut one = |scenario: &Scenario, store: &'static str, target: &Running| -> Result<(), Error> {
        eprintln!("stores: {} on {store}", scenario.name);
        let (load, cpu) = measure(runtime, dir, target, scenario, creds, LEVEL, settings)?;
        runs.push(Compared { scenario: scenario.name, store, load, cpu });
        Ok(())
    };
    for _ in 0..rounds {
        one(&refresh, "sled power", power)?;
        one(&refresh, "sled process", &process_server)?;
        if let Some(pg) = &postgres {
            one(&cc, "sled power", power)?;
            one(&cc, "PostgreSQL", pg)?;
            one(&refresh, "PostgreSQL", pg)?;
        }
    }
    Ok(runs)
}

/// The mean rate, p99 and CPU per unit of `scenario` on `store` over the
/// comparison's rounds.
fn mean_of(runs: &[Compared], scenario: &str, store: &str) -> Option<(f64, Duration, Duration, usize)> {
    let mine: Vec<&Compared> = runs.iter().filter(|c| c.scenario == scenario && c.store == store).collect();
    if mine.is_empty() {
        return None;
    }
    let n = mine.len() as f64;
    let rate = mine.iter().map(|c| c.load.per_second()).sum::<f64>() / n;
    let p99 = mine.iter().map(|c| c.load.p99).sum::<Duration>().div_f64(n);
    let cpu = mine.iter().map(|c| c.cpu).sum::<Duration>().div_f64(n);
    Some((rate, p99, cpu, mine.len()))
}

fn stores_report(runs: &[Compared]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nStores at 32 connections, the servers run alternately (the mean of each server's runs; PostgreSQL is a throwaway cluster on the same cores, its CPU not in the server's column):\n"
    );
    let _ = writeln!(out, "| scenario | store | runs | units/s | p99 ms | server CPU µs/unit | errors |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    let rows = [
        ("refresh_token", "sled power"),
        ("refresh_token", "sled process"),
        ("client_credentials", "sled power"),
        ("client_credentials", "PostgreSQL"),
        ("refresh_token", "PostgreSQL"),
    ];
    for (scenario, store) in rows {
        if let Some((rate, p99, cpu, n)) = mean_of(runs, scenario, store) {
            let errors: u64 =
                runs.iter().filter(|c| c.scenario == scenario && c.store == store).map(|c| c.load.errors).sum();
            let _ = writeln!(out, "| {scenario} | {store} | {n} | {rate:.0} | {} | {} | {errors} |", ms(p99), us(cpu));
        }
    }
    let _ = writeln!(out, "\nStore targets (SPEC-2):\n");
    let rate = |scenario: &str, store: &str| mean_of(runs, scenario, store).map(|m| m.0);
    let mut target = |name: &str, num: Option<f64>, den: Option<f64>, at_least: f64| {
        let line = match (num, den) {
            (Some(n), Some(d)) => {
                let ratio = n / d.max(f64::EPSILON);
                let verdict = if ratio >= at_least { "met:" } else { "MISSED:" };
                format!("{verdict} {name}: {:.0}% (at least {:.0}%)", ratio * 100.0, at_least * 100.0)
            }
            _ => format!("n/a: {name}: not measured (no PostgreSQL for the comparison)"),
        };
        let _ = writeln!(out, "- {line}");
    };
    target(
        "refresh on sled power against process",
        rate("refresh_token", "sled power"),
        rate("refresh_token", "sled process"),
        0.8,
    );
    target(
        "client_credentials on PostgreSQL against sled",
        rate("client_credentials", "PostgreSQL"),
        rate("client_credentials", "sled power"),
        0.6,
    );
    target(
        "refresh on PostgreSQL against sled",
        rate("refresh_token", "PostgreSQL"),
        rate("refresh_token", "sled power"),
        0.4,
    );
    out
}

/// Runs one load against `target`; returns it with the target's CPU per unit.
fn measure(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    target: &Running,
    scenario: &Scenario,
    creds: &Credentials,
    level: usize,
    settings: &Settings,
) -> Result<(Load, Duration), Error> {
    let time = settings.run_time;
    // Seeds are made before the CPU count starts: each costs an Argon2 verify.
    let seeds = match scenario.kind {
        Kind::Drive(Flow::Refresh) => runtime.block_on(seed_refresh_tokens(&target.base, creds, level))?,
        // One bound token serves every worker; each request has its own proof.
        Kind::Drive(Flow::DpopUserinfo) => vec![creds.dpop_token.clone(); level],
        Kind::Drive(Flow::SsoCode) => runtime.block_on(load::sign_in_each(&target.base, creds, level))?,
        // Enough codes that a worker rarely waits for one to come due: at
        // least DEVICE_CODES in all, and 32 per worker.
        Kind::Drive(Flow::DevicePoll) => {
            let each = (DEVICE_CODES / level).max(32);
            let codes = runtime.block_on(load::device_codes(&target.base, creds, each * level))?;
            codes.chunks(each).map(|c| c.join("\n")).collect()
        }
        _ => Vec::new(),
    };
    settle(target.pid())?;
    let before = procfs::cpu_time(target.pid())?;
    let load = match &scenario.kind {
        Kind::Wrk(single) => load::wrk(dir, &target.base, single, level, time)?,
        Kind::Drive(flow) => runtime.block_on(load::drive(*flow, &target.base, creds, seeds, level, time, None))?,
    };
    let cpu = procfs::cpu_time(target.pid())? - before;
    Ok((load, cpu.div_f64(load.units.max(1) as f64)))
}

/// How many pending device codes the device poll scenario spreads over its
/// workers (at least).
const DEVICE_CODES: usize = 4096;

/// Waits (up to 60 s) until `pid` is idle, so that work queued by the last
/// run (Argon2 verifications, say) is not counted in the next one.
pub(crate) fn settle(pid: u32) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = procfs::cpu_time(pid)?;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = procfs::cpu_time(pid)?;
        if now - last <= Duration::from_millis(20) {
            return Ok(());
        }
        last = now;
    }
    Err(Error::Setup(format!("process {pid} did not become idle")))
}

/// Gets `n` refresh tokens, each the start of its own family.
async fn seed_refresh_tokens(base: &str, creds: &Credentials, n: usize) -> Result<Vec<String>, Error> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (base, creds) = (base.to_owned(), creds.clone());
        tasks.push(tokio::spawn(async move { load::password_grant(&base, &creds).await }));
    }
    let mut seeds = Vec::new();
    for t in tasks {
        seeds.push(t.await.map_err(|e| Error::Setup(e.to_string()))??);
    }
    Ok(seeds)
}

fn credentials() -> Credentials {
    Credentials {
        basic: process::basic(),
        client_id: process::CLIENT_ID.into(),
        redirect_uri: process::REDIRECT_URI.into(),
        username: process::USERNAME.into(),
        password: BENCH_PASSWORD.into(),
        dpop_token: String::new(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn token_single(body: String) -> Single {
    Single { method: "POST", path: "/token".into(), body, authorization: process::basic() }
}

fn password_single() -> Single {
    token_single(form(&[("grant_type", "password"), ("username", process::USERNAME), ("password", BENCH_PASSWORD)]))
}

fn refresh_single(token: &str) -> Single {
    token_single(form(&[("grant_type", "refresh_token"), ("refresh_token", token)]))
}

/// The benched routes, in report order.
fn scenarios(access_token: &str) -> Vec<Scenario> {
    vec![
        Scenario {
            name: "client_credentials",
            kind: Kind::Wrk(token_single(form(&[("grant_type", "client_credentials")]))),
            requests_per_unit: 1,
            steps: &[Step::Es256Sign],
        },
        Scenario {
            name: "userinfo",
            kind: Kind::Wrk(Single {
                method: "GET",
                path: "/userinfo".into(),
                body: String::new(),
                authorization: format!("Bearer {access_token}"),
            }),
            requests_per_unit: 1,
            steps: &[Step::Es256Verify],
        },
        Scenario {
            name: "introspect",
            kind: Kind::Wrk(Single {
                method: "POST",
                path: "/introspect".into(),
                body: form(&[("token", access_token)]),
                authorization: process::basic(),
            }),
            requests_per_unit: 1,
            steps: &[Step::Es256Verify],
        },
        Scenario {
            name: "refresh_token",
            kind: Kind::Drive(Flow::Refresh),
            requests_per_unit: 1,
            steps: &[Step::Es256Sign, Step::DurableWrite],
        },
        Scenario {
            name: "password",
            kind: Kind::Wrk(password_single()),
            requests_per_unit: 1,
            steps: &[Step::Argon2Verify],
        },
        Scenario {
            name: "code_flow",
            kind: Kind::Drive(Flow::Code),
            requests_per_unit: 5,
            steps: &[Step::Argon2Verify],
        },
        // SPEC-2: a DPoP-bound token adds one ES256 verify of the proof to
        // the sign. The proof's replay record is a store write the floor
        // leaves out (its cost is measured on its own, docs/benchmarks.md).
        Scenario {
            name: "dpop_client_credentials",
            kind: Kind::Drive(Flow::DpopClientCredentials),
            requests_per_unit: 1,
            steps: &[Step::Es256Verify, Step::Es256Sign],
        },
        // Two verifies: the token's signature and the proof's.
        Scenario {
            name: "dpop_userinfo",
            kind: Kind::Drive(Flow::DpopUserinfo),
            requests_per_unit: 1,
            steps: &[Step::Es256Verify, Step::Es256Verify],
        },
        // The assertion's verify and the token's sign.
        Scenario {
            name: "private_key_jwt",
            kind: Kind::Drive(Flow::AssertionClientCredentials),
            requests_per_unit: 1,
            steps: &[Step::Es256Verify, Step::Es256Sign],
        },
        Scenario {
            name: "openid_code_flow",
            kind: Kind::Drive(Flow::OidcCode),
            requests_per_unit: 5,
            steps: &[Step::Argon2Verify, Step::Rs256Sign],
        },
        // authorize and token, the access token's and the ID token's
        // signatures, and the store's durable writes: the authorization
        // session opened, its code issued, the code redeemed, the grant with
        // its refresh token stored.
        // RFC 8628 polls of pending device codes at the client's pace: client
        // authentication (a SHA-256 secret), one store read of the device
        // request and one compare-and-swap that records the poll's time,
        // which `slow_down` needs on every node: a durable write.
        Scenario {
            name: "device_poll",
            kind: Kind::Drive(Flow::DevicePoll),
            requests_per_unit: 1,
            steps: &[Step::DurableWrite],
        },
        Scenario {
            name: "sso_code_flow",
            kind: Kind::Drive(Flow::SsoCode),
            requests_per_unit: 2,
            steps: &[
                Step::Es256Sign,
                Step::Rs256Sign,
                Step::DurableWrite,
                Step::DurableWrite,
                Step::DurableWrite,
                Step::DurableWrite,
            ],
        },
    ]
}

/// The targets at 32 connections (SPEC "Performance targets"), one line each.
fn targets(rows: &[Row]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut check = |ok: bool, line: String| lines.push(format!("{} {line}", if ok { "met:" } else { "MISSED:" }));
    let at32 = |name: &str| rows.iter().find(|r| r.scenario == name && r.level == 32);
    for r in rows.iter().filter(|r| r.level == 32) {
        check(r.overhead() <= 1.5, format!("{}: overhead {:.2} (at most 1.5)", r.scenario, r.overhead()));
    }
    if let Some(r) = at32("client_credentials") {
        let ratio = r.ratio().unwrap_or(0.0);
        check(ratio >= 0.20, format!("client_credentials: {:.1}% of the ceiling (at least 20%)", ratio * 100.0));
        check(
            r.server.p99 < Duration::from_millis(5),
            format!("client_credentials: p99 {:?} (under 5 ms)", r.server.p99),
        );
    }
    for name in ["password", "code_flow", "openid_code_flow"] {
        if let Some(r) = at32(name) {
            let raw = r.limits().get(Step::Argon2Verify).map_or(f64::INFINITY, |l| l.per_second);
            let share = r.server.per_second() / raw;
            check(share >= 0.9, format!("{name}: {:.0}% of the raw Argon2id rate (at least 90%)", share * 100.0));
        }
    }
    let errors: u64 = rows.iter().map(|r| r.server.errors).sum();
    check(errors == 0, format!("errors: {errors} (none)"));
    lines
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// The report: the limits before each scenario, one table row per scenario
/// and concurrency, and the targets. Markdown, so it pastes into
/// docs/benchmarks.md.
fn report(rows: &[Row], targets: &[String]) -> String {
    let mut out = String::new();
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "Run of {} at commit {}, nproc {}, store {}, load by wrk -t1 and the flow driver on the same machine.\n",
        run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        run("git", &["rev-parse", "--short", "HEAD"]),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if std::env::var_os(process::POSTGRES_VAR).is_some() {
            "PostgreSQL (throwaway cluster on this machine; its CPU is not in the server's figures)"
        } else {
            "sled"
        },
    );
    let _ = writeln!(
        out,
        "Raw limits of each scenario's unavoidable steps, measured in process (one thread per core; the sled write from 32 tasks) right before the ceiling's run and right after the server's, as ops/s and CPU µs/op; the floor uses their mean:\n"
    );
    let _ = writeln!(out, "| scenario | conns | {} |", Step::ALL.map(Step::name).join(" | "));
    // One right-aligned column per step, after the scenario and the level.
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(Step::ALL.len()));
    let cell = |l: limits::Limit| format!("{:.0}/s, {} µs", l.per_second, us(l.cpu));
    for r in rows {
        let cells = Step::ALL.map(|step| match (r.before.get(step), r.after.get(step)) {
            (Some(b), Some(a)) => format!("{} → {}", cell(b), cell(a)),
            _ => String::new(),
        });
        let _ = writeln!(out, "| {} | {} | {} |", r.scenario, r.level, cells.join(" | "));
    }
    let _ = writeln!(out, "\nScenarios (units/s: requests, or refreshes, or whole code flows):\n");
    let _ = writeln!(
        out,
        "| scenario | conns | units/s | p50 ms | p99 ms | p99.9 ms | errors | CPU µs/unit | peak RSS MiB | ceiling units/s | ratio | floor µs | overhead |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let ceiling = r.ceiling.map_or("n/a".into(), |c| format!("{:.0}", c.per_second()));
        let ratio = r.ratio().map_or("n/a".into(), |x| format!("{:.1}%", x * 100.0));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.2} |",
            r.scenario,
            r.level,
            r.server.per_second(),
            ms(r.server.p50),
            ms(r.server.p99),
            ms(r.server.p999),
            r.server.errors,
            us(r.cpu),
            r.peak_rss_kib as f64 / 1024.0,
            ceiling,
            ratio,
            us(r.floor),
            r.overhead(),
        );
    }
    let _ = writeln!(out, "\nTargets at 32 connections:\n");
    for t in targets {
        let _ = writeln!(out, "- {t}");
    }
    out
}

/// The soak's lifetimes: short enough that every record the load creates
/// (grants and their sessions, refresh tokens, access tokens) expires and is
/// swept within the first minute, so the store reaches a steady state against
/// which a leak shows. At the defaults a grant lives 90 days and a rotated
/// refresh token 14 days (kept for reuse detection), so a store taking a
/// thousand rotations a second grows all soak long, by design.
const SOAK_LIFETIMES: Lifetimes = Lifetimes { access: 30, refresh: 10, family: 30, sweep: 5 };

/// A refresh chain starts a new family when its family is this old, before
/// [`SOAK_LIFETIMES`]`.family` ends it.
const SOAK_RENEW_AFTER: Duration = Duration::from_secs(20);

/// `wrk` runs in rounds this long, each with a fresh access token, because the
/// soak's access tokens live 30 s.
const SOAK_ROUND: Duration = Duration::from_secs(15);

/// `--soak SECS`: mixed load for `secs`, sampling the server's resident memory
/// every 10 s. Fails when it grows by more than 10% after the first minute.
pub(crate) fn soak(secs: u64) -> Result<(String, bool), Error> {
    let dir = tempfile::tempdir()?;
    let hash = process::password_hash()?;
    let server = process::start_server(dir.path(), &hash, SOAK_LIFETIMES)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let creds = credentials();
    let seeds = runtime.block_on(seed_refresh_tokens(&server.base, &creds, 16))?;
    let time = Duration::from_secs(secs);
    let started = std::time::Instant::now();
    let (base, pid) = (server.base.clone(), server.pid());
    // client_credentials, /userinfo and /introspect by wrk, 8 connections
    // each, in rounds.
    let singles = |rt: &tokio::runtime::Runtime| -> Result<Vec<Single>, Error> {
        let (_, _, body) = rt.block_on(load::fetch(&base, &password_single()))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Setup(e.to_string()))?;
        let token = v["access_token"].as_str().ok_or_else(|| Error::Setup("no access token".into()))?;
        Ok(scenarios(token)
            .into_iter()
            .filter_map(|s| match s.kind {
                Kind::Wrk(single) if s.name != "password" => Some(single),
                _ => None,
            })
            .collect())
    };
    let (loads, samples) = std::thread::scope(|scope| {
        let wrks = scope.spawn(|| {
            let mut total = Load::default();
            while let Some(left) = time.checked_sub(started.elapsed()).filter(|d| d.as_secs() >= 1) {
                let round = left.min(SOAK_ROUND);
                let singles = singles(&runtime)?;
                let round: Vec<Result<Load, Error>> = std::thread::scope(|round_scope| {
                    let runs: Vec<_> = singles
                        .iter()
                        .map(|single| round_scope.spawn(|| load::wrk(dir.path(), &base, single, 8, round)))
                        .collect();
                    runs.into_iter()
                        .map(|r| r.join().unwrap_or_else(|_| Err(Error::Setup("a load thread panicked".into()))))
                        .collect()
                });
                for l in round {
                    let l = l?;
                    (total.units, total.errors) = (total.units + l.units, total.errors + l.errors);
                }
            }
            Ok::<_, Error>(total)
        });
        let drivers = scope.spawn(|| {
            runtime.block_on(async {
                let renew = Some(SOAK_RENEW_AFTER);
                let refresh = load::drive(Flow::Refresh, &base, &creds, seeds, 16, time, renew);
                let code = load::drive(Flow::Code, &base, &creds, Vec::new(), 1, time, None);
                let (r, c) = tokio::join!(refresh, code);
                Ok::<_, Error>(vec![r?, c?])
            })
        });
        let mut samples = Vec::new();
        while started.elapsed() < time {
            std::thread::sleep(Duration::from_secs(10).min(time));
            samples.push((started.elapsed().as_secs(), procfs::memory_kib(pid, "VmRSS")));
        }
        let wrk = wrks.join().map_err(|_| Error::Setup("a load thread panicked".into()))?;
        let driven = drivers.join().map_err(|_| Error::Setup("the driver panicked".into()))?;
        Ok::<_, Error>((vec![wrk], (driven, samples)))
    })?;
    let (driven, samples) = samples;
    let mut loads = loads.into_iter().collect::<Result<Vec<Load>, Error>>()?;
    loads.extend(driven?);
    let samples: Vec<(u64, u64)> = samples.into_iter().map(|(t, m)| m.map(|m| (t, m))).collect::<Result<_, _>>()?;
    let mut out = String::new();
    let _ =
        writeln!(out, "Soak: {secs} s of mixed load (client_credentials, userinfo, introspect, refresh, code flow)\n");
    let _ = writeln!(out, "| t (s) | resident MiB |\n|---:|---:|");
    for (t, kib) in &samples {
        let _ = writeln!(out, "| {t} | {:.1} |", *kib as f64 / 1024.0);
    }
    let errors: u64 = loads.iter().map(|l| l.errors).sum();
    let units: u64 = loads.iter().map(|l| l.units).sum();
    let after_minute: Vec<u64> = samples.iter().filter(|(t, _)| *t >= 60).map(|(_, m)| *m).collect();
    let growth = match (after_minute.first(), after_minute.iter().max()) {
        (Some(&first), Some(&max)) => max as f64 / first.max(1) as f64 - 1.0,
        _ => 0.0,
    };
    let ok = errors == 0 && growth <= 0.10;
    let _ = writeln!(
        out,
        "\n{units} units, {errors} errors; growth after the first minute {:.1}% (at most 10%): {}",
        growth * 100.0,
        if ok { "ok" } else { "FAILED" }
    );
    Ok((out, ok))
}
