//! The whole life of both packages: build, install, check the files, run
//! as the service users (apt-get through the cacher, a mirror served by
//! nginx), purge.

use super::*;

#[test]
fn build_install_run_and_purge_both_packages() {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    // Never on a machine where this would destroy an operator's set-up.
    for p in PACKAGES {
        assert!(
            !dpkg_knows(p),
            "refusing to run: package {p} is known to dpkg here (dpkg --purge {p} first)"
        );
    }
    for path in STATE_DIRS
        .iter()
        .map(|(d, _)| *d)
        .chain(CONFFILES.iter().map(|(f, _)| *f))
    {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "refusing to run: {path} exists (its package's purge would remove it)"
        );
    }

    // Build. The first build may be cold; the second shares its dependencies.
    let mut debs = Vec::new();
    for p in PACKAGES {
        let (deb, took) = cargo_deb(p);
        eprintln!(
            "cargo deb -p {p}: {:.1} s, {} ({} bytes)",
            took.as_secs_f64(),
            deb.display(),
            file_size(&deb)
        );
        let dbgsym = deb.with_file_name(
            deb.file_name()
                .and_then(|n| n.to_str())
                .expect("a .deb file name")
                .replacen(p, &format!("{p}-dbgsym"), 1)
                .replace(".deb", ".ddeb"),
        );
        if dbgsym.exists() {
            eprintln!(
                "  debug symbols: {} ({} bytes)",
                dbgsym.display(),
                file_size(&dbgsym)
            );
        }
        debs.push(deb);
    }

    let guard = PurgeOnDrop;
    run(Command::new("dpkg").arg("-i").args(&debs));

    // What dpkg installed.
    let ws = workspace();
    for (package, files) in FILES {
        let listed = run(Command::new("dpkg").args(["-L", package]));
        eprintln!("dpkg -L {package}:\n{listed}");
        let mut got: Vec<&str> = listed
            .lines()
            .filter(|l| !Path::new(l).is_dir() || Path::new(l).is_symlink())
            .collect();
        got.sort_unstable();
        assert_eq!(got, files, "dpkg -L {package}, directories left out");
        for dir in listed.lines().filter(|l| Path::new(l).is_dir()) {
            assert!(
                files.iter().any(|f| f.starts_with(&format!("{dir}/"))) || dir == "/.",
                "{package} owns the empty directory {dir}"
            );
        }
        let bin = format!("/usr/bin/{package}");
        assert_stripped(&bin);
        eprintln!("{bin}: {} bytes (stripped)", file_size(Path::new(&bin)));
        let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", package]));
        let (conffile, source) = CONFFILES
            .iter()
            .find(|(_, s)| s.starts_with(package))
            .expect("a conffile per package");
        assert!(
            conffiles
                .lines()
                .any(|l| l.trim().starts_with(&format!("{conffile} "))),
            "{conffile} is not a conffile of {package}: {conffiles:?}"
        );
        assert_eq!(
            fs::read(conffile).unwrap(),
            fs::read(ws.join(source)).unwrap()
        );
        assert_eq!(
            fs::read(format!("/usr/lib/sysusers.d/{package}.conf")).unwrap(),
            fs::read(ws.join(format!("contrib/systemd/{package}.sysusers.conf"))).unwrap(),
        );
        for unit in files
            .iter()
            .filter(|f| f.starts_with("/usr/lib/systemd/system/"))
        {
            let name = Path::new(unit).file_name().expect("a unit file name");
            assert_eq!(
                fs::read(unit).unwrap(),
                fs::read(ws.join("contrib/systemd").join(name)).unwrap(),
                "{unit} differs from contrib/systemd"
            );
        }
        let help = run(Command::new(&bin).arg("--help"));
        assert_eq!(
            fs::read_to_string(format!("/usr/share/doc/{package}/{package}.help")).unwrap(),
            help
        );
    }
    // The service users (system accounts) and their directories.
    for (dir, user) in STATE_DIRS {
        let (uid, gid, _, shell) =
            passwd(user).unwrap_or_else(|| panic!("no user {user} after dpkg -i"));
        assert!(uid < 1000, "{user} is not a system user: uid {uid}");
        assert_eq!(shell, "/usr/sbin/nologin");
        let m = fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(m.is_dir());
        assert_eq!(
            (m.uid(), m.gid()),
            (uid, gid),
            "{dir} is not owned by {user}"
        );
        assert_eq!(m.mode() & 0o7777, 0o755, "{dir}");
    }

    // An upstream both services use, and a scratch directory they can read.
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .by_hash(true)
        .generated_packages(4, 2000)
        .package(PackageSpec::new("tool", "1.0").size(30_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let want_tool = fs::read(repo.root().join(&repo.package("tool").unwrap().pool_path)).unwrap();

    // apt-cacher as its user, with the installed configuration plus only a
    // port of its own and one mapping.
    let installed = fs::read_to_string("/etc/apt-cacher.toml").unwrap();
    let config = tmp.path().join("apt-cacher.toml");
    fs::write(
        &config,
        format!(
            "listen_address = \"127.0.0.1:0\"\n{installed}test = \"{}\"\n",
            up.url()
        ),
    )
    .unwrap();
    let log_path = tmp.path().join("apt-cacher.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut cacher = KillOnDrop(
        as_user("apt-cacher", "/usr/bin/apt-cacher")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let addr = wait_serving(&log_path, &mut cacher.0);
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("http://{addr}/test"), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        fs::read(apt.archives_dir().join("tool_1.0_amd64.deb")).unwrap(),
        want_tool
    );
    let (cacher_uid, ..) = passwd("apt-cacher").expect("the user apt-cacher");
    // The cacher keeps a download just after its last byte went out: wait
    // (up to 10 s, however busy the machine) until it is renamed into the
    // cache and no temporary file is left to vanish under the checks below.
    let t = Instant::now();
    let settled = |cached: &[PathBuf]| {
        cached
            .iter()
            .any(|p| p.to_string_lossy().contains("tool_1.0_amd64.deb"))
            && !cached
                .iter()
                .any(|p| p.parent().and_then(Path::file_name) == Some(".tmp".as_ref()))
    };
    let mut cached = walk(Path::new("/var/cache/apt-cacher"));
    while t.elapsed() < Duration::from_secs(10) && !settled(&cached) {
        std::thread::sleep(Duration::from_millis(50));
        cached = walk(Path::new("/var/cache/apt-cacher"));
    }
    assert!(
        cached
            .iter()
            .any(|p| p.to_string_lossy().contains("tool_1.0_amd64.deb")),
        "tool is not in the cache: {cached:#?}"
    );
    for p in &cached {
        let m = fs::symlink_metadata(p).unwrap();
        assert_eq!(
            m.uid(),
            cacher_uid,
            "{} not owned by apt-cacher",
            p.display()
        );
    }
    run(Command::new("kill").args(["-TERM", &cacher.0.id().to_string()]));
    let status = wait_exit(&mut cacher.0, Duration::from_secs(30), "apt-cacher");
    assert!(
        status.success(),
        "apt-cacher after SIGTERM: {status}\n{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );

    // apt-mirror as its user, with the installed configuration plus one mirror.
    let key = tmp.path().join("key.gpg");
    repo.key().write_public(&key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let installed = fs::read_to_string("/etc/apt/mirror.toml").unwrap();
    let config = tmp.path().join("mirror.toml");
    fs::write(
        &config,
        format!(
            "{installed}\n[mirror.test]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            key.display()
        ),
    )
    .unwrap();
    let mirror_started = Instant::now();
    // Its output goes to a file: a pipe nobody reads could fill and stall it.
    let mirror_log = tmp.path().join("apt-mirror.log");
    let log = fs::File::create(&mirror_log).unwrap();
    let mut mirror = KillOnDrop(
        as_user("apt-mirror", "/usr/bin/apt-mirror")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let status = wait_exit(&mut mirror.0, Duration::from_secs(120), "apt-mirror");
    let mirror_out = fs::read_to_string(&mirror_log).unwrap_or_default();
    assert!(status.success(), "apt-mirror: {status}\n{mirror_out}");
    eprintln!(
        "apt-mirror run as apt-mirror: {:.1} s",
        mirror_started.elapsed().as_secs_f64()
    );
    let (mirror_uid, ..) = passwd("apt-mirror").expect("the user apt-mirror");
    let spool = walk(Path::new("/var/spool/apt-mirror"));
    for p in &spool {
        let m = fs::symlink_metadata(p).unwrap();
        assert_eq!(
            m.uid(),
            mirror_uid,
            "{} not owned by apt-mirror",
            p.display()
        );
    }
    // Served as Debian runs nginx: workers as www-data.
    let server = Nginx::serve(Path::new("/var/spool/apt-mirror")).unwrap();
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/test", server.url()), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        fs::read(apt.archives_dir().join("tool_1.0_amd64.deb")).unwrap(),
        want_tool
    );
    drop(server);

    // Purge: nothing left but the system users.
    let listed: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| {
            run(Command::new("dpkg").args(["-L", p]))
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let out = guard.purge();
    assert!(
        out.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in PACKAGES {
        assert!(!dpkg_knows(p), "dpkg still knows {p} after --purge");
        let doc = format!("/usr/share/doc/{p}");
        assert!(!Path::new(&doc).exists(), "{doc} left after purge");
    }
    for path in &listed {
        let p = Path::new(path);
        if !p.is_dir() || p.is_symlink() {
            assert!(fs::symlink_metadata(p).is_err(), "{path} left after purge");
        }
    }
    for path in STATE_DIRS
        .iter()
        .map(|(d, _)| *d)
        .chain(CONFFILES.iter().map(|(f, _)| *f))
    {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{path} left after purge"
        );
    }
    for dir in [
        "/etc/systemd/system",
        "/var/lib/systemd/deb-systemd-helper-enabled",
        "/var/lib/systemd/deb-systemd-helper-masked",
    ] {
        if Path::new(dir).is_dir() {
            let left: Vec<PathBuf> = walk(Path::new(dir))
                .into_iter()
                .filter(|p| {
                    let s = p.to_string_lossy();
                    PACKAGES.iter().any(|name| s.contains(name))
                })
                .collect();
            assert!(left.is_empty(), "left after purge: {left:#?}");
        }
    }
    for user in PACKAGES {
        if passwd(user).is_some() {
            eprintln!("the system user {user} stays after purge (Debian practice)");
        }
    }
    eprintln!(
        "deb_packages: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
