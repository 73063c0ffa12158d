//! Kafka's framing: every request and response is a big-endian `i32` size
//! followed by that many bytes. A size below the smallest request header or
//! above [`MAX_FRAME_BYTES`] is refused before anything is allocated, so a
//! garbage or hostile prefix costs nothing but the connection.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::KafkaError;

/// The largest frame accepted (Kafka's `socket.request.max.bytes` default).
pub const MAX_FRAME_BYTES: usize = 100 << 20;

/// The smallest request: api key, api version and correlation id (8 bytes).
const MIN_REQUEST_BYTES: i64 = 8;

/// Reads one frame; `None` at a clean end of stream between frames.
pub async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, KafkaError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(prefix) as i64;
    if size > max as i64 {
        return Err(KafkaError::FrameTooLarge { size, max });
    }
    if size < MIN_REQUEST_BYTES {
        return Err(KafkaError::BadFrame(
            "a size too small for a request header",
        ));
    }
    let mut frame = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut frame).await?;
    Ok(Some(frame.freeze()))
}

/// Writes `body` as one frame.
pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> Result<(), KafkaError> {
    let size = i32::try_from(body.len()).map_err(|_| KafkaError::FrameTooLarge {
        size: body.len() as i64,
        max: i32::MAX as usize,
    })?;
    writer.write_all(&size.to_be_bytes()).await?;
    writer.write_all(body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_a_clean_end_is_none() {
        let mut buf = Vec::new();
        write(&mut buf, b"12345678").await.unwrap();
        let mut reader = &buf[..];
        assert_eq!(
            read(&mut reader, 64).await.unwrap().unwrap(),
            &b"12345678"[..]
        );
        assert!(read(&mut reader, 64).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_huge_or_negative_or_tiny_size_is_refused() {
        for size in [1_000_000i32, -5, 3] {
            let bytes = size.to_be_bytes();
            let mut reader = &bytes[..];
            let err = read(&mut reader, 1024).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    KafkaError::FrameTooLarge { .. } | KafkaError::BadFrame(_)
                ),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let mut buf = 100i32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"short");
        let mut reader = &buf[..];
        assert!(read(&mut reader, 1024).await.is_err());
    }
}
