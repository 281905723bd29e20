//! Serving: build every part from the configuration, run until a signal, and
//! shut down cleanly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oauth_core::{
    Account, AccountId, Admin, AllowAll, Authority, Client, ClientId, ClientSource, Clock, FixedClients,
    LayeredClients, ResourceCheck, SecretSource, Services, Store, StoreError,
};
use oauth_http::{AdminApi, Frontend, SecurityEventLog};
use oauth_jwt::{JwtCodec, JwtProofs, KeyRing};
use oauth_medmij::{MedMijCheck, Ocl, OclClients, Profile};
use oauth_runtime::GatedStore;
use oauth_runtime::credentials::{HashVerifier, Hasher, OsSecrets, SystemClock};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::{AccountEntry, Backend, Config, KeySource, std_duration};
use crate::error::{Error, Result};
use crate::throttle_cache::ThrottleCache;

/// How many store operations run at once; the rest wait up to `store_timeout`.
const STORE_CONCURRENCY: usize = 256;
/// How often the OCL file is checked for changes.
const OCL_POLL_EVERY: Duration = Duration::from_secs(10);
/// How often a node sharing its store re-reads the signing keys, so that the
/// other nodes' keys and a key added by `keys rotate` verify here.
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(25);

/// Serves with the configuration at `path`, or the built-in defaults.
pub(crate) fn main(path: Option<&Path>) -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, _flush) = match crate::logging::batched(std::io::stderr()) {
        Ok(batched) => batched,
        Err(e) => {
            eprintln!("cannot start the log thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt().with_writer(writer).with_env_filter(filter).with_target(false).with_ansi(ansi).init();
    let loaded = match path {
        Some(p) => Config::load(p),
        None => Config::defaults(),
    };
    let config = match loaded.report() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if path.is_none() {
        info!("no --config given: serving with built-in defaults (sled store in ./data, no clients)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<()> {
    let opened = crate::store::open_for_serving(&config.store).await?;
    let gated = GatedStore::new(opened.store.clone(), STORE_CONCURRENCY, std_duration(config.server.store_timeout));
    let timings = gated.timings();
    // On a shared database the throttle's reads are cached per node for up
    // to a second (SPEC-2); an embedded store answers them from memory.
    let store: Arc<dyn Store> = match opened.postgres {
        Some(_) => Arc::new(ThrottleCache::new(Arc::new(gated))),
        None => Arc::new(gated),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets: Arc<dyn SecretSource> = Arc::new(OsSecrets);
    // Nodes starting together on one database take turns here, so that one
    // creates the signing key and the seeded accounts and the others find
    // them (instead of each generating a key, or failing on a username that
    // another node inserted a moment before).
    let startup = match &opened.postgres {
        Some(pg) => Some(pg.startup_lock().await.map_err(Error::StartupLock)?),
        None => None,
    };
    seed_accounts(&*store, &config.accounts, &*secrets).await.map_err(Error::SeedAccounts)?;

    let tokens = &config.tokens;
    let retention = tokens.access_token_ttl + tokens.leeway;
    let now = clock.now();
    let ring = match &tokens.key {
        KeySource::Store => KeyRing::load_or_generate(&*store, tokens.signing_alg, now, retention).await,
        KeySource::File(key) => KeyRing::with_key_file(&*store, (**key).clone(), now, retention).await,
    }
    .map_err(Error::SigningKeys)?;
    if let Some(lock) = startup {
        lock.release().await.map_err(Error::StartupLock)?;
    }
    info!(kid = ring.signer().kid(), alg = ring.signer().alg().name(), "signing key ready");
    if let Some(id) = ring.id_token_signer() {
        info!(kid = id.kid(), "ID-token signing key ready");
    }
    let codec = Arc::new(
        JwtCodec::new(ring, config.issuer.clone(), config.audience().to_owned(), tokens.leeway)
            .accepting_resources(config.resources.keys().map(|r| r.as_str().to_owned())),
    );

    let ocl = match &config.medmij {
        Some(m) => {
            let profile = Profile { scopes: m.scopes.clone(), require_pkce: m.require_pkce };
            let clients = OclClients::new(&m.ocl, profile).map_err(Error::MedmijOcl)?;
            info!(sequence = m.ocl.sequence, clients = m.ocl.clients.len(), "OAuth Client List loaded");
            Some(Arc::new(clients))
        }
        None => None,
    };
    let resources: Arc<dyn ResourceCheck> = match (&ocl, &config.medmij) {
        (Some(o), Some(m)) => Arc::new(MedMijCheck::new(o.clone(), m.min_age, Arc::new(AllowAll))),
        _ => Arc::new(AllowAll),
    };
    let fixed: Arc<dyn FixedClients> = Arc::new(Clients {
        configured: config.clients.iter().map(|c| (c.id().clone(), Arc::new(c.clone()))).collect(),
        ocl: ocl.clone(),
    });
    // The configuration's and the OCL's clients over the store's (the admin
    // API's and registered ones), which every node sees within 5 s.
    let clients = LayeredClients::new(fixed.clone(), store.clone(), clock.clone());

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let verifier = HashVerifier::new(cores).map_err(Error::PasswordVerifier)?;
    let events = Arc::new(SecurityEventLog::default());
    let services = Services {
        store: store.clone(),
        clients: Arc::new(clients),
        clock: clock.clone(),
        secrets,
        verifier: Arc::new(verifier),
        tokens: codec.clone(),
        id_tokens: codec.clone(),
        resources,
        events: events.clone(),
        proofs: Arc::new(if config.profile.fapi2 { JwtProofs::fapi2() } else { JwtProofs::new() }),
    };
    if config.store.backend == Backend::Postgres {
        tokio::spawn(reload_keys(codec.clone(), store.clone(), clock.clone()));
    }
    let authority = Authority::new(config.settings(), services);
    let admin = Arc::new(Admin::new(authority.clone(), fixed, Arc::new(Hasher)));
    let frontend = Frontend::new(config.http(), authority, codec)
        .map_err(Error::Frontend)?
        .with_store_timings(timings)
        .with_security_events(events)
        .with_registration(admin.clone());
    if config.registration.enabled {
        let how = if config.registration.initial_access_token.is_some() { "initial access token" } else { "open" };
        info!(how, "dynamic client registration at /register");
    }
    // Every signal handler is in place before the server says it is ready: a
    // SIGHUP that arrived first would otherwise take its default action and
    // end the process.
    let handler =
        |kind: SignalKind, name: &'static str| signal(kind).map_err(|source| Error::Signal { signal: name, source });
    let mut term = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut int = handler(SignalKind::interrupt(), "SIGINT")?;
    let hup = handler(SignalKind::hangup(), "SIGHUP")?;
    tokio::spawn(sweep(store.clone(), clock.clone(), std_duration(config.store.sweep_interval), config.counted_for()));
    if let (Some(o), Some(m)) = (ocl, &config.medmij) {
        tokio::spawn(watch_ocl(o, m.ocl_path.clone(), hup));
    }
    let listen_failed = |addr, what| move |source| Error::Listen { addr, what, source };
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(listen_failed(config.listen, ""))?;
    let local = listener.local_addr().map_err(listen_failed(config.listen, ""))?;
    // Both listeners stop on the same signal.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let admin_task = match &config.admin {
        Some(a) => {
            let admin_listener =
                tokio::net::TcpListener::bind(a.listen).await.map_err(listen_failed(a.listen, " (admin.listen)"))?;
            let local = admin_listener.local_addr().map_err(listen_failed(a.listen, " (admin.listen)"))?;
            info!("admin API serving on {local}");
            let mut api = AdminApi::new(admin, a.token_hash.clone(), config.http());
            if let (Some(dir), Some(sled)) = (&a.backup_dir, &opened.sled) {
                api = api.with_backup(Arc::new(SledBackup {
                    store: sled.clone(),
                    dir: dir.clone(),
                    clock: clock.clone(),
                }));
            }
            let api = Arc::new(api);
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(oauth_http::serve(admin_listener, api, shutdown, DRAIN)))
        }
        None => None,
    };
    // Logged once both listeners are bound: it is the line that says the
    // server is ready.
    info!(issuer = %config.issuer, "listening on {local}");
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: draining"),
            _ = int.recv() => info!("SIGINT: draining"),
        }
        let _ = stop.send(true);
    };
    oauth_http::serve(listener, Arc::new(frontend), shutdown, DRAIN)
        .await
        .map_err(|source| Error::Serve { addr: local, source })?;
    if let Some(task) = admin_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("admin listener: {e}"),
            Err(e) => warn!("admin listener task: {e}"),
        }
    }
    if let Some(sled) = opened.sled {
        sled.flush().await.map_err(Error::FinalFlush)?;
    }
    info!("stopped");
    Ok(())
}

/// Clients from the configuration first, then from the OCL.
struct Clients {
    configured: BTreeMap<ClientId, Arc<Client>>,
    ocl: Option<Arc<OclClients>>,
}

impl FixedClients for Clients {
    fn fixed_client(&self, id: &ClientId) -> Option<(Arc<Client>, ClientSource)> {
        if let Some(c) = self.configured.get(id) {
            return Some((c.clone(), ClientSource::Configuration));
        }
        self.ocl.as_ref().and_then(|o| o.get(id)).map(|c| (c, ClientSource::Ocl))
    }

    fn fixed_clients(&self) -> Vec<(Arc<Client>, ClientSource)> {
        let mut all: Vec<(Arc<Client>, ClientSource)> =
            self.configured.values().map(|c| (c.clone(), ClientSource::Configuration)).collect();
        if let Some(o) = &self.ocl {
            all.extend(o.all().into_iter().map(|c| (c, ClientSource::Ocl)));
        }
        all.sort_by(|a, b| a.0.id().as_str().as_bytes().cmp(b.0.id().as_str().as_bytes()));
        all
    }
}

/// `POST /admin/backup` on a sled store: a consistent copy in a new
/// directory under `admin.backup_dir`, named for the time it was taken.
struct SledBackup {
    store: Arc<oauth_store_sled::ReopeningStore>,
    dir: std::path::PathBuf,
    clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl oauth_http::Backup for SledBackup {
    async fn backup(&self) -> oauth_core::Result<(String, u64)> {
        let now = self.clock.now();
        let name = format!(
            "oauth-backup-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| oauth_core::Error::Internal(format!("cannot create admin.backup_dir: {e}")))?;
        let path = self.dir.join(name);
        let entries = self.store.backup(&path).await.map_err(|e| match e {
            StoreError::Conflict(_) => oauth_core::Error::Conflict("a backup of this name exists; try again"),
            other => oauth_core::Error::Store(other),
        })?;
        info!(path = %path.display(), entries, "backup written");
        Ok((path.display().to_string(), entries))
    }
}

/// Makes the stored accounts match `[[accounts]]`, by username: new ones get
/// a fresh id, changed ones are updated (keeping their id), and accounts no
/// longer listed are disabled.
async fn seed_accounts(
    store: &dyn Store,
    entries: &[AccountEntry],
    secrets: &dyn SecretSource,
) -> Result<(), StoreError> {
    for e in entries {
        let existing = store.account_by_username(&e.username).await?;
        let id = match &existing {
            Some(a) => a.id,
            None => {
                let mut b = [0u8; 16];
                secrets.fill(&mut b).map_err(|e| StoreError::Unavailable(e.to_string()))?;
                AccountId::from_random_bytes(b)
            }
        };
        let account = Account {
            id,
            username: e.username.clone(),
            password_hash: e.password_hash.clone(),
            disabled: e.disabled,
            attributes: e.attributes.clone(),
            origin: oauth_core::AccountOrigin::Configuration,
        };
        if existing.as_ref() != Some(&account) {
            store.put_account(&account).await?;
        }
    }
    for mut a in store.accounts().await? {
        // Accounts of the admin API are not the file's to disable.
        let configured = a.origin == oauth_core::AccountOrigin::Configuration;
        if configured && !a.disabled && !entries.iter().any(|e| e.username == a.username) {
            info!(username = %a.username, "account no longer configured: disabled");
            a.disabled = true;
            store.put_account(&a).await?;
        }
    }
    Ok(())
}

async fn sweep(store: Arc<dyn Store>, clock: Arc<dyn Clock>, every: Duration, counted_for: time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = clock.now();
        match store.sweep(now, now - counted_for).await {
            Ok(s) => tracing::debug!(?s, "swept expired records"),
            Err(e) => warn!("sweeping expired records failed: {e}"),
        }
    }
}

/// Re-reads the signing keys the store holds, keeping this node's signer.
async fn reload_keys(codec: Arc<JwtCodec>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(KEY_RELOAD_EVERY);
    loop {
        tick.tick().await;
        match codec.reload_keys(&*store, clock.now()).await {
            Ok(true) => info!("signing keys reloaded: the set of verifying keys changed"),
            Ok(false) => {}
            Err(e) => warn!("reloading signing keys failed: {e}"),
        }
    }
}

/// Reloads the OCL on SIGHUP, and when the file's modification time changes.
async fn watch_ocl(clients: Arc<OclClients>, path: std::path::PathBuf, mut hup: tokio::signal::unix::Signal) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&path);
    let mut poll = tokio::time::interval(OCL_POLL_EVERY);
    loop {
        let reason = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = poll.tick() => {
                let now = modified(&path);
                if now == last { continue }
                last = now;
                "file changed"
            }
        };
        let result = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| Ocl::parse(&text).map_err(|e| e.to_string()))
            .and_then(|ocl| clients.reload(&ocl).map(|n| (ocl.sequence, n)).map_err(|e| e.to_string()));
        match result {
            Ok((sequence, n)) => info!(reason, sequence, clients = n, "OAuth Client List reloaded"),
            Err(e) => error!(reason, "OAuth Client List reload failed, keeping sequence {}: {e}", clients.sequence()),
        }
    }
}
