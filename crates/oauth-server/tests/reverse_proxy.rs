//! The reverse-proxy examples of docs/deployment.md, as printed: the nginx site
//! passes `nginx -t` and then serves in front of the real binary, with a
//! self-signed certificate for its name; the Caddyfile passes `caddy
//! validate`.
//!
//! Needs Debian's `nginx` (or `nginx-light`), `caddy`, `curl` and `openssl`;
//! `.ci/run` installs them. Only the ports and the certificate's files differ
//! from the printed configuration.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use support::*;

/// The fenced block of `lang` in docs/deployment.md.
fn example(lang: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/deployment.md")).unwrap();
    let fence = format!("```{lang}");
    let mut lines = doc.lines().skip_while(|l| *l != fence).skip(1);
    let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
    assert!(!block.is_empty(), "no {fence} block in docs/deployment.md");
    block.join("\n") + "\n"
}

fn tool(name: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(name)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .output()
        .unwrap_or_else(|_| panic!("{name} is missing: install the Debian package {name} (.ci/run does)"))
}

/// nginx in the foreground, one process; killed when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `curl` against the proxy, resolving its name to 127.0.0.1 and trusting the
/// test's certificate: the status and the body.
fn curl(dir: &Path, tls: u16, args: &[&str]) -> (u16, String) {
    let resolve = format!("auth.example.com:{tls}:127.0.0.1");
    let mut all = vec!["-s", "--cacert", "cert.pem", "--resolve", &resolve, "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let out = tool("curl", &all, dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn the_nginx_site_passes_nginx_t_and_serves_in_front_of_the_server_with_metrics_kept_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tls, plain, backend) = (free_port(), free_port(), free_port());
    let issuer = format!("https://auth.example.com:{tls}");

    // The server, as the section configures it (its port moved).
    let text = std::fs::read_to_string(Path::new(ROOT).join("examples/quickstart.toml"))
        .unwrap()
        .replace("issuer = \"http://127.0.0.1:8080\"", &format!("issuer = \"{issuer}\""))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{backend}"));
    let config = d.join("server.toml");
    std::fs::write(
        &config,
        format!("{text}\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[throttle]\nmax_failures_per_account = 1\n"),
    )
    .unwrap();
    let server = Server::start(&config, d);

    // A certificate for the name, and the site with the test's ports and files.
    let made = tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=auth.example.com",
            "-addext",
            "subjectAltName=DNS:auth.example.com",
        ],
        d,
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let site = example("nginx")
        .replace("listen 443 ssl http2;", &format!("listen 127.0.0.1:{tls} ssl http2;"))
        .replace("listen 80;", &format!("listen 127.0.0.1:{plain};"))
        .replace("/etc/letsencrypt/live/auth.example.com/fullchain.pem", &d.join("cert.pem").display().to_string())
        .replace("/etc/letsencrypt/live/auth.example.com/privkey.pem", &d.join("key.pem").display().to_string())
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{backend}"));
    std::fs::write(d.join("site.conf"), site).unwrap();
    // What Debian's /etc/nginx/nginx.conf does around a site, in the test's folder.
    let temp = |name: &str| d.join(name).display().to_string();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "pid {pid};\nerror_log stderr;\nevents {{}}\nhttp {{\n access_log off;\n client_body_temp_path {b};\n \
             proxy_temp_path {p};\n fastcgi_temp_path {f};\n uwsgi_temp_path {u};\n scgi_temp_path {s};\n \
             include {site};\n}}\n",
            pid = temp("nginx.pid"),
            b = temp("body"),
            p = temp("proxy"),
            f = temp("fastcgi"),
            u = temp("uwsgi"),
            s = temp("scgi"),
            site = temp("site.conf"),
        ),
    )
    .unwrap();
    let conf = temp("nginx.conf");
    let prefix = format!("{}/", d.display());
    let checked = tool("nginx", &["-t", "-p", &prefix, "-c", &conf], d);
    let said = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(checked.status.success() && said.contains("test is successful"), "nginx -t:\n{said}");

    let child = Command::new("nginx")
        .args(["-p", &prefix, "-c", &conf, "-g", "daemon off; master_process off;"])
        .spawn()
        .unwrap();
    let _nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", tls)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, body) = curl(d, tls, &[&format!("{issuer}/.well-known/oauth-authorization-server")]);
    assert_eq!(status, 200, "{body}");
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    let auth = format!("demo-app:{SECRET}");
    let (status, body) =
        curl(d, tls, &["-u", &auth, "-d", "grant_type=client_credentials", &format!("{issuer}/token")]);
    assert_eq!(status, 200, "{body}");
    for inside in ["/metrics", "/healthz"] {
        assert_eq!(curl(d, tls, &[&format!("{issuer}{inside}")]).0, 404, "{inside} is kept inside");
    }
    let (status, _) = curl(d, tls, &["-H", "Host: auth.example.com", &format!("http://127.0.0.1:{plain}/token")]);
    assert_eq!(status, 301, "plain http is redirected");

    // The throttle counts the client's address (this one connects from
    // 127.0.0.2), not the proxy's, and not one the client names itself.
    let spoofed = [
        "--interface",
        "127.0.0.2",
        "-H",
        "X-Forwarded-For: 203.0.113.9",
        "-u",
        "demo-app:wrong-secret-wrong-secret-wrong",
        "-d",
    ];
    for expected in [401, 429] {
        let mut args = spoofed.to_vec();
        let url = format!("{issuer}/token");
        args.extend_from_slice(&["grant_type=client_credentials", &url]);
        assert_eq!(curl(d, tls, &args).0, expected);
    }
    let line = server.wait_for("kind=throttle_lockout");
    assert!(line.contains("peer=127.0.0.2"), "{line}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn the_caddyfile_passes_caddy_validate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Caddyfile"), example("caddy")).unwrap();
    let out = tool("caddy", &["validate", "--config", "Caddyfile", "--adapter", "caddyfile"], dir.path());
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("Valid configuration"), "caddy validate:\n{said}");
    // Formatted as Caddy writes it, so a copy stays clean.
    let formatted = tool("caddy", &["fmt", "Caddyfile"], dir.path());
    assert_eq!(String::from_utf8_lossy(&formatted.stdout), example("caddy"), "caddy fmt changes the example");
}
