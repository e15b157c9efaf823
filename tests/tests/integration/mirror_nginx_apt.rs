//! The real stack: apt-mirror mirrors a generated upstream, real nginx
//! started the way Debian starts it (master as root, workers as `www-data`,
//! the README's server block; [`testkit::nginx`]) serves the mirror
//! directory, and the real `apt-get update` and `apt-get install
//! --download-only` run against it, before and after an update. The mirror
//! lies in a directory `www-data` may traverse; what apt-mirror publishes is
//! never chmod'ed by the tests (but to break it): its own modes must be
//! enough. Needs root and the Debian packages `nginx-light` (or `nginx`) and
//! `apt`.

use std::path::{Path, PathBuf};

use testkit::nginx::public_tempdir;
use testkit::{AptEnv, Nginx, PackageSpec, Repo, Upstream};

fn run_mirror(config: &Path) -> u8 {
    testkit::mirror::run(config, &[])
}

fn archive_names(apt: &AptEnv) -> Vec<String> {
    let mut v: Vec<String> = apt
        .downloaded_archives()
        .unwrap()
        .iter()
        .filter_map(|p: &PathBuf| p.file_name()?.to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn apt_get_through_nginx_before_and_after_an_update() {
    let tmp = public_tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("upstream"))
        .by_hash(true)
        .translations(true)
        .generated_packages(8, 3000)
        .package(PackageSpec::new("tool", "1.0").size(5000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let mirror_dir = tmp.path().join("mirror");
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            r#"dir = "{}"
max_conns = 4
[mirror.deb]
url = "{}"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
"#,
            mirror_dir.display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_mirror(&config), 0);
    // The pool is shared between snapshots: a relative symlink nginx follows.
    let pool = std::fs::read_link(mirror_dir.join("deb/pool")).unwrap();
    assert!(
        pool.to_string_lossy().starts_with("../../.deb.pool-"),
        "{pool:?}"
    );

    assert_published_modes(&mirror_dir);
    let nginx = Nginx::serve(&mirror_dir).unwrap();
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/deb", nginx.url()), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        archive_names(&apt),
        ["pkg0001_1.0_amd64.deb", "tool_1.0_amd64.deb"]
    );

    // A client that read the old InRelease before the swap...
    let old_release = std::fs::read_to_string(mirror_dir.join("deb/dists/stable/Release")).unwrap();
    let old_sha256 = old_release
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .find(|l| l.ends_with("main/binary-amd64/Packages.xz"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    // Upstream update: a new version of tool, pkg0001 removed, a new package.
    repo.replace(PackageSpec::new("tool", "2.0").size(6000));
    repo.remove("pkg0001");
    repo.add(PackageSpec::new("fresh", "1.0")).unwrap();
    repo.publish().unwrap();
    assert_eq!(run_mirror(&config), 0);
    assert_published_modes(&mirror_dir);

    // ...still finds its indices by hash in the new snapshot.
    assert_eq!(
        nginx
            .status(&format!(
                "/deb/dists/stable/main/binary-amd64/by-hash/SHA256/{old_sha256}"
            ))
            .unwrap(),
        200
    );
    apt.clean().unwrap().ok().unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "fresh"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        archive_names(&apt),
        ["fresh_1.0_amd64.deb", "tool_2.0_amd64.deb"]
    );
    let got = std::fs::read(apt.archives_dir().join("tool_2.0_amd64.deb")).unwrap();
    let want = std::fs::read(repo.root().join(&repo.package("tool").unwrap().pool_path)).unwrap();
    assert_eq!(got, want);
    let out = apt.install_download_only(&["pkg0001"]).unwrap();
    assert!(!out.success(), "removed package still installable");

    // Without by-hash on the client side too.
    apt.by_hash(false).unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    // The unchanged rerun keeps serving the same tree.
    let before = std::fs::read_link(mirror_dir.join("deb")).unwrap();
    assert_eq!(run_mirror(&config), 0);
    assert_eq!(std::fs::read_link(mirror_dir.join("deb")).unwrap(), before);
    apt.update().unwrap().ok_clean().unwrap();
}

#[test]
fn apt_get_through_nginx_flat_repository() {
    let tmp = public_tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .suite("flat/")
        .generated_packages(3, 1000)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.asc"))
        .unwrap();
    let mirror_dir = tmp.path().join("mirror");
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[mirror.flat]\nurl = \"{}\"\nsuites = [\"flat/\"]\nkeyring = [\"key.asc\"]\n",
            mirror_dir.display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_mirror(&config), 0);
    assert_published_modes(&mirror_dir);
    let nginx = Nginx::serve(&mirror_dir).unwrap();
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/flat", nginx.url()), "flat/", &[])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["pkg0002"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(archive_names(&apt), ["pkg0002_1.0_amd64.deb"]);
}

/// Every file and directory a client can reach in `mirror_dir` (the root,
/// what is not hidden in it, and everything below through the `<ID>` and
/// `pool` symlinks) has the published mode: 0644 / 0755 minus the umask.
/// Returns how many files were checked.
fn assert_published_modes(mirror_dir: &Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let umask = aptindex::fsmode::umask();
    let (file_mode, dir_mode) = (0o644 & !umask, 0o755 & !umask);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(mirror_dir), dir_mode, "{}", mirror_dir.display());
    let mut files = 0;
    let mut pending: Vec<PathBuf> = std::fs::read_dir(mirror_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    while let Some(p) = pending.pop() {
        // Following symlinks, as nginx does.
        let meta = std::fs::metadata(&p).unwrap();
        if meta.is_dir() {
            assert_eq!(mode(&p), dir_mode, "{}", p.display());
            pending.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode(&p), file_mode, "{:o}: {}", mode(&p), p.display());
            files += 1;
        }
    }
    assert!(files > 3, "only {files} files in {}", mirror_dir.display());
    files
}

/// Sets the mode of every regular file under `dir` (not following symlinks)
/// but those named `except` to `mode`: what an older apt-mirror left.
fn chmod_files(dir: &Path, mode: u32, except: &str) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let mut n = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                pending.push(e.path());
            } else if t.is_file() && e.file_name() != except {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
                n += 1;
            }
        }
    }
    n
}

/// A small signed upstream, mirrored once into `<tmp>/mirror` (mirror `deb`).
struct Mirrored {
    tmp: tempfile::TempDir,
    repo: Repo,
    _up: Upstream,
    config: PathBuf,
}

impl Mirrored {
    fn new() -> Mirrored {
        let tmp = public_tempdir().unwrap();
        let repo = Repo::builder(tmp.path().join("upstream"))
            .by_hash(true)
            .generated_packages(3, 2000)
            .package(PackageSpec::new("tool", "1.0").size(3000))
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        let config = tmp.path().join("mirror.toml");
        std::fs::write(
            &config,
            format!(
                "dir = \"{}\"\n[mirror.deb]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n",
                tmp.path().join("mirror").display(),
                up.url()
            ),
        )
        .unwrap();
        assert_eq!(run_mirror(&config), 0);
        Mirrored {
            tmp,
            repo,
            _up: up,
            config,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn apt(&self, nginx: &Nginx) -> AptEnv {
        let mut apt = AptEnv::with_key(self.repo.key()).unwrap();
        apt.add_source(&format!("{}/deb", nginx.url()), "stable", &["main"])
            .unwrap();
        apt
    }
}

#[test]
fn nginx_workers_run_as_www_data_and_a_private_file_is_forbidden() {
    let m = Mirrored::new();
    assert_published_modes(&m.dir());
    let nginx = Nginx::serve(&m.dir()).unwrap();
    // Started as Debian starts it: the master is this test's child, as
    // root; its workers are www-data.
    let (uid, gid) = testkit::nginx::user_ids("www-data").unwrap();
    assert_ne!(uid, 0);
    let workers = nginx.workers().unwrap();
    assert!(!workers.is_empty());
    for w in &workers {
        assert_eq!(w.uids, [uid; 4], "{w:?}");
        assert_eq!(w.gids, [gid; 4], "{w:?}");
    }
    // The README's server block: hidden entries denied, the summary only
    // for 127.0.0.1.
    assert_eq!(nginx.status("/deb/dists/stable/InRelease").unwrap(), 200);
    assert_eq!(nginx.status("/apt-mirror-summary.json").unwrap(), 200);
    assert_eq!(nginx.status("/.lock").unwrap(), 403);

    let pool = m.repo.package("pkg0002").unwrap().pool_path.clone();
    let url_path = format!("/deb/{pool}");
    assert_eq!(nginx.status(&url_path).unwrap(), 200);
    let apt = m.apt(&nginx);
    apt.update().unwrap().ok_clean().unwrap();
    // What the bug looked like: a file only its owner may read.
    let file = m.dir().join("deb").join(&pool);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(nginx.status(&url_path).unwrap(), 403);
    assert!(
        nginx.error_log().contains("Permission denied"),
        "{}",
        nginx.error_log()
    );
    let out = apt.install_download_only(&["pkg0002"]).unwrap();
    assert!(!out.success(), "{}", out.all());
    assert!(out.all().contains("403"), "{}", out.all());
    apt.install_download_only(&["tool"])
        .unwrap()
        .ok_clean()
        .unwrap();
}

#[test]
fn the_first_run_after_an_upgrade_makes_a_private_mirror_readable() {
    let mut m = Mirrored::new();
    let nginx = Nginx::serve(&m.dir()).unwrap();
    let apt = m.apt(&nginx);
    // An older apt-mirror published everything 0600 (and its workers got
    // 403 for every file).
    assert!(chmod_files(&m.dir(), 0o600, "") > 10);
    assert_eq!(nginx.status("/deb/dists/stable/InRelease").unwrap(), 403);
    assert!(!apt.update().unwrap().success());

    // Upstream unchanged: nothing is downloaded, but the modes are restored.
    let before = std::fs::read_link(m.dir().join("deb")).unwrap();
    assert_eq!(run_mirror(&m.config), 0);
    assert_eq!(std::fs::read_link(m.dir().join("deb")).unwrap(), before);
    assert_published_modes(&m.dir());
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();

    // Upstream changed, and only the files reused are private (info.json
    // readable, so no whole-snapshot pass): linked and held files are fixed
    // as they are reused.
    assert!(chmod_files(&m.dir(), 0o600, "info.json") > 10);
    m.repo.add(PackageSpec::new("fresh", "1.0")).unwrap();
    m.repo.publish().unwrap();
    assert_eq!(run_mirror(&m.config), 0);
    assert_ne!(std::fs::read_link(m.dir().join("deb")).unwrap(), before);
    assert_published_modes(&m.dir());
    apt.clean().unwrap().ok().unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001", "fresh"])
        .unwrap()
        .ok_clean()
        .unwrap();
}

/// Run by [`mirrors_follow_the_umask`] under a set umask: a first run and an
/// update (downloads, hard links, files the pool generation holds) publish
/// 0644 / 0755 minus that umask.
#[test]
#[ignore = "run by mirrors_follow_the_umask in a child process with a set umask"]
fn mirror_modes_child() {
    use std::os::unix::fs::PermissionsExt;
    let mut m = Mirrored::new();
    let n = assert_published_modes(&m.dir());
    let release = m.dir().join("deb/dists/stable/InRelease");
    let mode = std::fs::metadata(&release).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644 & !aptindex::fsmode::umask());
    m.repo.add(PackageSpec::new("fresh", "1.0")).unwrap();
    m.repo.publish().unwrap();
    assert_eq!(run_mirror(&m.config), 0);
    assert!(assert_published_modes(&m.dir()) > n);
}

#[test]
fn mirrors_follow_the_umask() {
    for umask in [0o022, 0o027] {
        let out =
            aptindex::fsmode::rerun_test_under_umask(umask, "mirror_nginx_apt::mirror_modes_child")
                .unwrap();
        assert!(
            aptindex::fsmode::ran_one_test(&out),
            "umask {umask:03o}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
