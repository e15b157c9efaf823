//! Writing one suite of a [`Repo`]: its indices in every configured
//! compression (and by-hash, pdiffs), the `Release` listing them, its
//! signatures, and the `Sources` index. [`Repo::publish`] calls this for
//! every suite.

use super::files::remove_if_exists;
use super::indices::{contents_index, packages_index, translation_index};
use super::*;

impl Repo {
    pub(super) fn write_suite(&self, suite: &str, date: SystemTime) -> Result<Vec<IndexFile>> {
        let dir = self.suite_dir(suite);
        let flat = suite.ends_with('/');
        // (path relative to suite dir, uncompressed content)
        let mut plain: Vec<(String, Vec<u8>)> = Vec::new();
        if flat {
            let pkgs: Vec<&Package> = self.in_suite(suite).collect();
            plain.push(("Packages".to_string(), packages_index(&pkgs)));
            if self.config.sources {
                plain.push(("Sources".to_string(), self.sources_index(&pkgs)?));
            }
        } else {
            for comp in &self.config.components {
                for arch in &self.config.architectures {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .filter(|p| &p.spec.arch == arch || p.spec.arch == "all")
                        .collect();
                    plain.push((
                        format!("{comp}/binary-{arch}/Packages"),
                        packages_index(&pkgs),
                    ));
                }
                if self.config.sources {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .collect();
                    plain.push((format!("{comp}/source/Sources"), self.sources_index(&pkgs)?));
                }
                if self.config.translations {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .collect();
                    for lang in &self.config.languages {
                        plain.push((
                            format!("{comp}/i18n/Translation-{lang}"),
                            translation_index(&pkgs, lang),
                        ));
                    }
                }
                if self.config.contents {
                    for arch in &self.config.architectures {
                        let pkgs: Vec<&Package> = self
                            .in_suite(suite)
                            .filter(|p| &p.spec.component == comp)
                            .filter(|p| &p.spec.arch == arch || p.spec.arch == "all")
                            .collect();
                        plain.push((format!("{comp}/Contents-{arch}"), contents_index(&pkgs)));
                    }
                }
            }
        }
        let mut files: Vec<IndexFile> = Vec::new();
        let mut translation_files: Vec<IndexFile> = Vec::new();
        for (path, data) in &plain {
            // apt finds an index by its uncompressed name, so Release always lists it (as
            // Debian does), even when the file itself is not published.
            let mut variants: Vec<(String, Vec<u8>, bool)> =
                vec![(path.clone(), data.clone(), self.config.uncompressed)];
            for c in &self.config.compressions {
                variants.push((format!("{path}{}", c.extension()), c.compress(data)?, true));
            }
            for (vpath, vdata, present) in variants {
                if present {
                    self.write_index(&dir, &vpath, &vdata, flat)?;
                } else {
                    remove_if_exists(&dir.join(&vpath))?;
                }
                let f = IndexFile {
                    path: vpath.clone(),
                    checksums: Checksums::of(&vdata),
                    present,
                };
                if present && path.contains("/i18n/") {
                    translation_files.push(f.clone());
                }
                files.push(f);
            }
        }
        if self.config.pdiffs {
            for (path, data) in plain.iter().filter(|(p, _)| wants_pdiff(p)) {
                let index = self.pdiff_state()?.update(
                    &dir,
                    suite,
                    path,
                    data,
                    self.config.pdiff_layout,
                    self.config.pdiff_keep,
                )?;
                if let Some(text) = index {
                    let ipath = format!("{path}.diff/Index");
                    self.write_index(&dir, &ipath, &text, flat)?;
                    files.push(IndexFile {
                        path: ipath,
                        checksums: Checksums::of(&text),
                        present: true,
                    });
                }
            }
        }
        // i18n/Index: SHA1 list of the translation files of each component.
        if self.config.translations && !flat {
            for comp in &self.config.components {
                let prefix = format!("{comp}/i18n/");
                let mut text = String::from("SHA1:\n");
                for f in translation_files
                    .iter()
                    .filter(|f| f.path.starts_with(&prefix))
                {
                    let name = &f.path[prefix.len()..];
                    let _ = writeln!(
                        text,
                        " {} {:>8} {}",
                        f.checksums.sha1, f.checksums.size, name
                    );
                }
                let path = format!("{prefix}Index");
                write_atomic(&dir.join(&path), text.as_bytes())?;
                files.push(IndexFile {
                    path,
                    checksums: Checksums::of(text.as_bytes()),
                    present: true,
                });
            }
        }
        let release = self.release_text(suite, date, &files);
        write_atomic(&dir.join("Release"), release.as_bytes())?;
        if self.config.signed {
            write_atomic(
                &dir.join("InRelease"),
                &self.key.clearsign(release.as_bytes())?,
            )?;
            write_atomic(
                &dir.join("Release.gpg"),
                &self.key.detach_sign(release.as_bytes())?,
            )?;
        } else {
            remove_if_exists(&dir.join("InRelease"))?;
            remove_if_exists(&dir.join("Release.gpg"))?;
        }
        Ok(files)
    }

    pub(super) fn write_index(
        &self,
        dir: &Path,
        path: &str,
        data: &[u8],
        flat: bool,
    ) -> Result<()> {
        write_atomic(&dir.join(path), data)?;
        if self.config.by_hash && !flat {
            let parent = match path.rfind('/') {
                Some(i) => dir.join(&path[..i]),
                None => dir.to_path_buf(),
            };
            let sums = Checksums::of(data);
            let mut algos = vec![
                ("MD5Sum", sums.md5),
                ("SHA1", sums.sha1),
                ("SHA256", sums.sha256),
            ];
            if self.config.sha512 {
                algos.push(("SHA512", sums.sha512));
            }
            for (algo, hash) in algos {
                let p = parent.join("by-hash").join(algo).join(hash);
                if !p.exists() {
                    write_atomic(&p, data)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn release_text(
        &self,
        suite: &str,
        date: SystemTime,
        files: &[IndexFile],
    ) -> String {
        let flat = suite.ends_with('/');
        let mut t = String::new();
        let _ = writeln!(t, "Origin: {}", self.config.origin);
        let _ = writeln!(t, "Label: {}", self.config.origin);
        if !flat {
            let _ = writeln!(t, "Suite: {suite}");
            let _ = writeln!(t, "Codename: {suite}");
        } else if suite_rel_dir(suite).is_some() {
            // apt compares a flat `deb URI sub/` line's dist with Suite/Codename.
            let _ = writeln!(t, "Suite: {suite}");
        }
        let _ = writeln!(t, "Date: {}", release_date(date));
        if let Some(v) = self.config.valid_until {
            let _ = writeln!(t, "Valid-Until: {}", release_date(date + v));
        }
        if !flat {
            let _ = writeln!(t, "Architectures: {}", self.config.architectures.join(" "));
            let _ = writeln!(t, "Components: {}", self.config.components.join(" "));
            if self.config.by_hash {
                let _ = writeln!(t, "Acquire-By-Hash: yes");
            }
        }
        let _ = writeln!(t, "Description: testkit generated repository");
        type Pick = fn(&Checksums) -> &str;
        let mut lists: Vec<(&str, Pick)> = vec![
            ("MD5Sum", |c| &c.md5),
            ("SHA1", |c| &c.sha1),
            ("SHA256", |c| &c.sha256),
        ];
        if self.config.sha512 {
            lists.push(("SHA512", |c| &c.sha512));
        }
        for (name, pick) in lists {
            let _ = writeln!(t, "{name}:");
            for f in files {
                let _ = writeln!(
                    t,
                    " {} {:>16} {}",
                    pick(&f.checksums),
                    f.checksums.size,
                    f.path
                );
            }
        }
        t
    }

    pub(super) fn sources_index(&self, pkgs: &[&Package]) -> Result<Vec<u8>> {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for p in pkgs {
            let s = &p.spec;
            if !seen.insert((s.name.clone(), s.version.clone())) {
                continue;
            }
            let dir = format!("pool/{}/{}/{}", s.component, pool_prefix(&s.name), s.name);
            let upstream_version = version_without_epoch(&s.version);
            let tar_name = format!("{}_{}.tar.xz", s.name, upstream_version);
            let tar = Compression::Xz.compress(&deterministic_bytes(
                format!("src\0{}\0{}\0{}", s.name, s.version, s.seed).as_bytes(),
                512,
            ))?;
            let tar_sums = Checksums::of(&tar);
            let dsc_name = format!("{}_{}.dsc", s.name, upstream_version);
            let dsc = format!(
                "Format: 3.0 (native)\nSource: {n}\nBinary: {n}\nArchitecture: any\nVersion: {v}\n\
                 Maintainer: Testkit <testkit@testkit.invalid>\nStandards-Version: 4.6.2\n\
                 Checksums-Sha256:\n {h} {sz} {t}\nFiles:\n {m} {sz} {t}\n",
                n = s.name,
                v = s.version,
                h = tar_sums.sha256,
                m = tar_sums.md5,
                sz = tar_sums.size,
                t = tar_name
            );
            let dsc_sums = Checksums::of(dsc.as_bytes());
            write_atomic(&self.root.join(&dir).join(&tar_name), &tar)?;
            write_atomic(&self.root.join(&dir).join(&dsc_name), dsc.as_bytes())?;
            let _ = write!(
                out,
                "Package: {n}\nBinary: {n}\nVersion: {v}\nMaintainer: Testkit <testkit@testkit.invalid>\n\
                 Architecture: any\nFormat: 3.0 (native)\nDirectory: {dir}\nPriority: optional\nSection: misc\n"
            , n = s.name, v = s.version);
            let _ = writeln!(out, "Files:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.md5, sums.size, name);
            }
            let _ = writeln!(out, "Checksums-Sha1:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.sha1, sums.size, name);
            }
            let _ = writeln!(out, "Checksums-Sha256:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.sha256, sums.size, name);
            }
            out.push('\n');
        }
        Ok(out.into_bytes())
    }
}
