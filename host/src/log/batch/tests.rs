use super::*;
use crate::log::LogError;

fn sample() -> Vec<Record> {
    vec![
        Record::keyed("k1", "v1"),
        Record {
            key: None,
            value: b"v2".to_vec(),
            headers: vec![("h".into(), b"x".to_vec()), ("empty".into(), vec![])],
            timestamp: Some(42),
            nulls: Nulls::default(),
        },
        Record::keyed("", ""),
    ]
}

fn no_corruption(what: &str) -> LogError {
    panic!("unexpected corruption: {what}")
}

fn decoded(
    window: &Window<'_>,
    from: u64,
    max: usize,
    seek: Option<&mut Vec<u32>>,
) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    decode(window, (from, u64::MAX), max, seek, &mut out, no_corruption).unwrap();
    out
}

#[test]
fn decode_stops_below_until_and_appends_to_what_is_there() {
    let bytes = Bytes::from(encode(10, &sample(), 0));
    let header = BatchHeader::parse(&bytes).unwrap();
    let whole = Window::whole(&bytes, &header);
    let mut out = decoded(&whole, 10, 1, None);
    decode(&whole, (11, 12), usize::MAX, None, &mut out, no_corruption).unwrap();
    let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![10, 11]);
    let mut seek = Vec::new();
    let mut none = Vec::new();
    decode(
        &whole,
        (10, 10),
        5,
        Some(&mut seek),
        &mut none,
        no_corruption,
    )
    .unwrap();
    assert!(none.is_empty(), "nothing below until");
    assert_eq!(seek, vec![HEADER_LEN as u32], "the walk still samples");
}

#[test]
fn encoded_batch_round_trips_with_dense_offsets() {
    let bytes = Bytes::from(encode(100, &sample(), 7));
    let header = BatchHeader::parse(&bytes).expect("header");
    assert_eq!(header.size as usize, bytes.len());
    assert_eq!(
        (header.base_offset, header.count, header.max_timestamp),
        (100, 3, 42)
    );
    assert!(checksum_ok(&bytes, &header));
    let whole = Window::whole(&bytes, &header);
    let records = decoded(&whole, 0, usize::MAX, None);
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![100, 101, 102]);
    assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(records[0].timestamp, 7);
    assert_eq!(records[1].key, None);
    assert_eq!(records[1].headers, sample()[1].headers);
    assert_eq!(
        records[2].key.as_deref(),
        Some(&b""[..]),
        "empty key is not no key"
    );
}

#[test]
fn decode_from_mid_batch_skips_earlier_records() {
    let bytes = Bytes::from(encode(10, &sample(), 0));
    let header = BatchHeader::parse(&bytes).unwrap();
    let whole = Window::whole(&bytes, &header);
    let records = decoded(&whole, 12, usize::MAX, None);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].offset, 12);
}

#[test]
fn a_window_from_a_seek_sample_decodes_like_the_whole_batch() {
    let records: Vec<Record> = (0..1000)
        .map(|i| Record::keyed(format!("k{i}"), "v".repeat(i % 50)))
        .collect();
    let bytes = Bytes::from(encode(5000, &records, 1));
    let header = BatchHeader::parse(&bytes).unwrap();
    let mut seek = Vec::new();
    let whole = Window::whole(&bytes, &header);
    let first = decoded(&whole, 5300, 10, Some(&mut seek));
    assert_eq!(seek.len(), 1000usize.div_ceil(SEEK_STEP as usize));
    assert_eq!(first.len(), 10);
    // From sample 2 (record 256) to sample 4 (record 512): offsets 5300..5310.
    let prefix = bytes.slice(..seek[4] as usize);
    let window = Window {
        bytes: &prefix,
        start: seek[2] as usize,
        first: 5000 + 2 * SEEK_STEP,
        end: 5000 + 4 * SEEK_STEP,
    };
    let again = decoded(&window, 5300, 10, None);
    assert_eq!(again, first);
    assert_eq!(again[0].offset, 5300);
    assert_eq!(again[0].key.as_deref(), Some(&b"k300"[..]));
}

#[test]
fn chunks_stay_within_both_limits_and_keep_order() {
    let records: Vec<Record> = (0..100).map(|i| Record::value(vec![i as u8; 40])).collect();
    let chunks: Vec<&[Record]> = chunks(&records, 7, 300).collect();
    assert!(chunks.iter().all(|c| c.len() <= 7 && encoded_len(c) <= 300));
    assert_eq!(chunks.concat(), records);
    let big = [Record::value(vec![0; 1000])];
    assert_eq!(
        super::chunks(&big, 7, 300).count(),
        1,
        "alone, to be refused"
    );
}

/// A batch as weir wrote it before nulls existed (built by hand from
/// the layout above, crc32c included): offset 7, a keyed record with a
/// header, then an unkeyed record with an empty value.
const OLD_BATCH: &str = "4e0000008612056c01000000020000000700000000000000e903000000000000\
    e803000000000000010000006b0100000076010000000100680100000078e903000000000000\
    ffffffff0000000000000000";

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_batch_written_before_nulls_reads_the_same_and_encodes_byte_for_byte() {
    let old = Bytes::from(unhex(OLD_BATCH));
    let header = BatchHeader::parse(&old).expect("header");
    assert!(checksum_ok(&old, &header));
    let records = decoded(&Window::whole(&old, &header), 0, usize::MAX, None);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].value, &b"v"[..]);
    assert_eq!(records[0].headers, vec![("h".to_string(), b"x".to_vec())]);
    assert_eq!(records[1].key, None);
    assert!(
        records.iter().all(|r| r.nulls == Nulls::default()),
        "no nulls"
    );
    let again = vec![
        Record {
            headers: vec![("h".into(), b"x".to_vec())],
            timestamp: Some(1000),
            ..Record::keyed("k", "v")
        },
        Record {
            timestamp: Some(1001),
            ..Record::default()
        },
    ];
    assert_eq!(
        encode(7, &again, 0),
        old.to_vec(),
        "the same bytes as before"
    );
}

#[test]
fn null_values_and_null_header_values_round_trip_apart_from_empty_ones() {
    let records = vec![
        Record::tombstone("gone"),
        Record {
            headers: vec![
                ("a".into(), b"1".to_vec()),
                ("a".into(), vec![]),
                ("a".into(), vec![]),
            ],
            nulls: Nulls {
                value: false,
                headers: vec![1],
            },
            ..Record::keyed("k", "")
        },
    ];
    let bytes = Bytes::from(encode(0, &records, 5));
    assert_eq!(bytes.len() as u64, encoded_len(&records));
    let header = BatchHeader::parse(&bytes).unwrap();
    assert!(checksum_ok(&bytes, &header));
    let whole = Window::whole(&bytes, &header);
    let back = decoded(&whole, 0, usize::MAX, None);
    assert!(back[0].nulls.value && back[0].value.is_empty());
    assert!(!back[1].nulls.value, "an empty value is not a null one");
    assert_eq!(back[1].nulls.headers, [1]);
    assert_eq!(back[1].headers, records[1].headers);
    // Skipping over nulls (a read from the second record) lands right.
    let mut seek = Vec::new();
    let second = decoded(&whole, 1, usize::MAX, Some(&mut seek));
    assert_eq!(second, back[1..]);
}

#[test]
fn every_single_bit_flip_is_caught_by_the_header_or_the_checksum() {
    let bytes = encode(0, &sample(), 0);
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x10;
        let caught = match BatchHeader::parse(&flipped) {
            None => true,
            Some(h) => !checksum_ok(&flipped, &h),
        };
        assert!(caught, "bit flip at byte {i} went unnoticed");
    }
}
