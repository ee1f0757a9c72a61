//! Opens the `panderm batch` report.html in headless Chromium (Debian's `/usr/bin/chromium`):
//! the page renders (screenshot with the thumbnails), logs nothing to the console (no CSP
//! violation, no error) and makes no network request. Two negative-control pages prove that
//! the detectors fire: a CSP violation, and a request leaving the page.
//!
//! Skipped with a message when Chromium is not installed, unless `PANDERM_REQUIRE_CHROMIUM=1`.
//! `PANDERM_CHROMIUM` overrides the browser path.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("PANDERM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("PANDERM_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    assert!(!required, "PANDERM_REQUIRE_CHROMIUM=1 but {} is missing (apt-get install chromium)", path.display());
    eprintln!(
        "skipped: {} not found (apt-get install chromium; PANDERM_REQUIRE_CHROMIUM=1 makes this fail)",
        path.display()
    );
    None
}

/// What one headless Chromium run left behind.
struct Visit {
    stderr: String,
    dom: String,
    netlog: serde_json::Value,
    screenshot: PathBuf,
}

/// Loads `page` once: screenshot, DOM dump, console log (stderr) and NetLog together.
fn visit(browser: &Path, page: &Path, work: &Path) -> Visit {
    std::fs::create_dir_all(work).unwrap();
    let profile = work.join("profile");
    let _ = std::fs::remove_dir_all(&profile);
    let screenshot = work.join("shot.png");
    let netlog = work.join("netlog.json");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1600",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(std::fs::File::create(work.join("stdout")).unwrap())
        .stderr(std::fs::File::create(work.join("stderr")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(work.join("stderr")).unwrap_or_default();
    assert!(status.success(), "chromium failed on {}: {status}\n{stderr}", page.display());
    let dom = std::fs::read_to_string(work.join("stdout")).unwrap_or_default();
    let netlog = read_netlog(&netlog);
    let _ = std::fs::remove_dir_all(&profile);
    Visit { stderr, dom, netlog, screenshot }
}

/// Parses a NetLog file; a log cut short (browser killed) is closed before parsing.
fn read_netlog(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|_| {
        let trimmed = text.trim_end().trim_end_matches(',');
        serde_json::from_str(&format!("{trimmed}]}}")).expect("NetLog is JSON")
    })
}

/// Console messages Chromium logged for the page: with `--enable-logging=stderr --v=0` every
/// `console.*` call, uncaught exception and CSP violation is printed as
/// `[pid:tid:time:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)` (older versions:
/// `INFO:CONSOLE(<line>)`). CSP violations read "… violates the following Content Security Policy
/// directive …" (older versions: "Refused to load …"). The report has no script, so any such
/// line is a failure; Chromium's own noise (D-Bus, GPU, sandbox warnings) is not matched.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE:")
                || l.contains(":CONSOLE(")
                || l.contains("Content Security Policy")
                || l.contains("Refused to ")
        })
        .collect()
}

/// URLs the page itself requested over the network, from the NetLog: `URL_REQUEST_START_JOB`
/// events for a non-`file:`/`data:` URL made on behalf of a page. The browser's own background
/// requests (update checks and the like, which a bare profile still attempts) carry the initiator
/// "not an origin"; requests from a `file://` page carry "null" and a `file://` isolation key.
fn page_requests(netlog: &serde_json::Value) -> Vec<String> {
    let start_job = netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().expect("NetLog constants");
    let mut urls = Vec::new();
    for ev in netlog["events"].as_array().expect("NetLog events") {
        if ev["type"].as_u64() != Some(start_job) {
            continue;
        }
        let p = &ev["params"];
        let url = p["url"].as_str().unwrap_or_default();
        if url.starts_with("file:") || url.starts_with("data:") {
            continue;
        }
        let initiator = p["initiator"].as_str();
        let from_page = matches!(initiator, Some(i) if i != "not an origin")
            || p["network_isolation_key"].as_str().is_some_and(|k| k.contains("file://"));
        if from_page {
            urls.push(url.to_owned());
        }
    }
    urls
}

/// The report of a small clinic folder: two photos (one with a hostile name), a PNG and a
/// corrupt JPEG (an error card).
fn make_report(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let photo = image("clinical_forearm_iphone14.jpg");
    std::fs::copy(&photo, input.join("forearm.jpg")).unwrap();
    std::fs::copy(&photo, input.join("x<b>&\"y'.jpg")).unwrap();
    std::fs::copy(image("synthetic_333x517.png"), input.join("synthetic.png")).unwrap();
    let bytes = std::fs::read(&photo).unwrap();
    std::fs::write(input.join("corrupt.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("out");
    let o = panderm_command()
        .args(["batch", "--bundle"])
        .arg(root().join("models/demo"))
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("report.html")
}

const CSP_META: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; \
                        style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">";

#[test]
fn report_renders_offline_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("batch-chromium");
    let report = make_report(&dir);

    // The real report: renders, no console message, no request.
    let v = visit(&browser, &report, &dir.join("report"));
    let problems = console_problems(&v.stderr);
    assert!(problems.is_empty(), "console messages from the report: {problems:#?}");
    let requests = page_requests(&v.netlog);
    assert!(requests.is_empty(), "the report made network requests: {requests:?}");
    // The DOM parsed as intended: 4 cards, 3 data: thumbnails, the escaped name as text.
    assert_eq!(v.dom.matches("<article").count(), 4, "{}", &v.dom[..v.dom.len().min(2000)]);
    assert_eq!(v.dom.matches("<img src=\"data:image/jpeg;base64,").count(), 3);
    assert!(v.dom.contains("x&lt;b&gt;&amp;\"y'.jpg"), "hostile name stays text");
    assert!(!v.dom.contains("<b>&amp;"), "no <b> element from a file name");

    // The screenshot: right size, not blank, and the photo thumbnails are there (a page of text
    // and flat colours has a few hundred distinct colours, photos add thousands).
    let shot = image::open(&v.screenshot).expect("screenshot decodes").to_rgb8();
    assert_eq!(shot.dimensions(), (1200, 1600));
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    let mut skin = 0usize;
    for p in shot.pixels() {
        colours.insert(p.0);
        let [r, g, b] = p.0.map(i32::from);
        if r + g + b < 3 * 235 {
            non_white += 1;
        }
        // The forearm photo's skin tones: red above green above blue, mid brightness.
        if r > g + 10 && g > b + 5 && (110..=235).contains(&r) && r - b > 30 && r - b < 110 {
            skin += 1;
        }
    }
    let total = (shot.width() * shot.height()) as usize;
    eprintln!("screenshot: {} colours, {non_white} non-white px of {total}, {skin} skin-tone px", colours.len());
    assert!(colours.len() > 3000, "{} distinct colours: thumbnails missing?", colours.len());
    assert!(non_white * 20 > total, "screenshot almost blank: {non_white} of {total} pixels");
    // Two 160 px forearm thumbnails hold ~2 × 20000 skin pixels.
    assert!(skin > 15_000, "{skin} skin-tone pixels: the photo thumbnails did not render");

    // Negative control 1: the same CSP with a remote image: the console detector must fire.
    let bad = dir.join("csp_violation.html");
    std::fs::write(
        &bad,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">{CSP_META}<title>bad</title></head>\
             <body><p>control</p><img src=\"http://example.com/x.png\" alt=\"\"></body></html>"
        ),
    )
    .unwrap();
    let v = visit(&browser, &bad, &dir.join("bad"));
    let problems = console_problems(&v.stderr);
    assert!(
        problems.iter().any(|l| l.contains("http://example.com/x.png")),
        "the CSP violation was not detected; stderr:\n{}",
        v.stderr
    );
    assert!(page_requests(&v.netlog).is_empty(), "CSP must have blocked the request");

    // Negative control 2: no CSP and a request to a closed local port (nothing leaves the
    // machine): the NetLog detector must see it.
    let leaky = dir.join("request.html");
    std::fs::write(
        &leaky,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>leak</title></head>\
         <body><p>control</p><img src=\"http://127.0.0.1:9/x.png\" alt=\"\"></body></html>",
    )
    .unwrap();
    let v = visit(&browser, &leaky, &dir.join("leaky"));
    assert_eq!(page_requests(&v.netlog), ["http://127.0.0.1:9/x.png"], "the page's request was not detected");
    let _ = std::fs::remove_dir_all(&dir);
}
