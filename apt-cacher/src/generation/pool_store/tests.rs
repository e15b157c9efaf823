//! The sidecar format: round trip, and every kind of bad sidecar refused
//! without a panic.

use super::*;

fn index_cs(size: u64, fill: u8) -> Checksums {
    Checksums {
        size,
        md5: Some([fill; 16]),
        sha256: Some([fill; 32]),
        ..Checksums::default()
    }
}

fn sample() -> PoolMap {
    let mut map = HashMap::new();
    for i in 0..50u8 {
        let mut cs = Checksums {
            size: u64::from(i) * 1000 + 1,
            ..Checksums::default()
        };
        match i % 4 {
            0 => cs.md5 = Some([i; 16]),
            1 => cs.sha1 = Some([i; 20]),
            2 => cs.sha256 = Some([i; 32]),
            _ => cs.sha512 = Some([i; 64]),
        }
        map.insert(
            format!("pool/main/p/p{i}/p{i}_1.0_amd64.deb").into_boxed_str(),
            PoolEntry::new(&cs).unwrap(),
        );
    }
    Arc::new(map)
}

fn bounds() -> Bounds {
    Bounds {
        decompressed: 1 << 30,
        max_entries: 1000,
    }
}

fn reason(r: Result<PoolMap, StoreError>) -> &'static str {
    match r {
        Err(StoreError::Invalid { reason, .. }) => reason,
        Err(e) => panic!("not invalid: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn round_trip() {
    let (idx, map) = (index_cs(1234, 7), sample());
    let data = encode(&idx, &map).unwrap();
    let back = decode(Path::new("x.map"), &data, &idx, bounds()).unwrap();
    assert_eq!(*back, *map);
    let empty: PoolMap = Arc::new(HashMap::new());
    let data = encode(&idx, &empty).unwrap();
    assert!(decode(Path::new("x.map"), &data, &idx, bounds())
        .unwrap()
        .is_empty());
}

#[test]
fn store_and_load_on_disk_and_carry() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("gen-1"), tmp.path().join("gen-2"));
    let (idx, map) = (index_cs(99, 3), sample());
    let rel = "main/binary-amd64/Packages.xz";
    store(&old, rel, &idx, &map).unwrap();
    assert!(old
        .join(".pool/main/binary-amd64/Packages.xz.map")
        .is_file());
    assert_eq!(*load(&old, rel, &idx, bounds()).unwrap(), *map);
    carry(&old, &new, rel, &idx, &map).unwrap();
    assert_eq!(*load(&new, rel, &idx, bounds()).unwrap(), *map);
    // Written afresh when the old generation has none.
    carry(&old, &new, "other/Packages", &idx, &map).unwrap();
    assert_eq!(*load(&new, "other/Packages", &idx, bounds()).unwrap(), *map);
    assert!(matches!(
        load(&new, "missing/Packages", &idx, bounds()),
        Err(StoreError::Io { .. })
    ));
}

#[test]
fn truncated_anywhere_is_refused() {
    let (idx, map) = (index_cs(10, 1), sample());
    let data = encode(&idx, &map).unwrap();
    for n in 0..data.len() {
        assert!(
            decode(Path::new("x"), &data[..n], &idx, bounds()).is_err(),
            "{n}"
        );
    }
}

#[test]
fn wrong_version_or_magic() {
    let (idx, map) = (index_cs(10, 1), sample());
    let mut data = encode(&idx, &map).unwrap();
    data[8] = 2;
    assert_eq!(
        reason(decode(Path::new("x"), &data, &idx, bounds())),
        "another format version"
    );
    data[8] = 1;
    data[0] = b'X';
    assert_eq!(
        reason(decode(Path::new("x"), &data, &idx, bounds())),
        "not a pool map (wrong magic)"
    );
}

#[test]
fn another_index_is_refused() {
    let map = sample();
    let data = encode(&index_cs(10, 1), &map).unwrap();
    for other in [index_cs(11, 1), index_cs(10, 2)] {
        assert_eq!(
            reason(decode(Path::new("x"), &data, &other, bounds())),
            "made for other index bytes"
        );
    }
}

#[test]
fn damaged_bytes_are_refused() {
    let (idx, map) = (index_cs(10, 1), sample());
    let data = encode(&idx, &map).unwrap();
    for i in (12..data.len()).step_by(7) {
        let mut d = data.clone();
        d[i] ^= 0x40;
        assert!(decode(Path::new("x"), &d, &idx, bounds()).is_err(), "{i}");
    }
}

#[test]
fn over_the_entry_cap_is_refused() {
    let (idx, map) = (index_cs(10, 1), sample());
    let data = encode(&idx, &map).unwrap();
    let small = Bounds {
        decompressed: 1 << 30,
        max_entries: 10,
    };
    assert_eq!(
        reason(decode(Path::new("x"), &data, &idx, small)),
        "more entries than max_index_entries"
    );
}

/// Garbage with a valid header and checksum (a hostile or buggy writer):
/// refused, never a panic nor a huge allocation.
#[test]
fn garbage_never_panics() {
    let idx = index_cs(10, 1);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..300 {
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        body.extend_from_slice(&10u64.to_le_bytes());
        body.push(3);
        body.extend_from_slice(&[1; 32]);
        let count: u64 = if round % 3 == 0 { u64::MAX } else { round % 20 };
        body.extend_from_slice(&count.to_le_bytes());
        for _ in 0..(round % 97) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push(seed as u8);
        }
        let sum = sha256(&body);
        body.extend_from_slice(&sum);
        let _ = decode(Path::new("x"), &body, &idx, bounds());
        // And the raw noise alone.
        let _ = decode(Path::new("x"), &body[12..], &idx, bounds());
    }
}
