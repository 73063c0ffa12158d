//! A typed HTTP client for a running `weir serve`: what the CLI uses when
//! `--server` (or `WEIR_SERVER`) is set. One method per endpoint of
//! `docs/api.md`, sending and reading the shapes of [`crate::wire`] that the
//! server uses too; records travel in the binary framing of
//! [`crate::wire::frame`], so bytes arrive exactly as they were produced.
//!
//! Every error the server answers (`{"error": ...}` with a 4xx or 5xx) becomes
//! [`ClientError::Api`] carrying the status and the server's message; names
//! are put into URLs as single, escaped path segments.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::log::{Record, StoredRecord};
pub use crate::supervisor::{NewProcessor, Swap};
use crate::wire::frame::{self, FrameError};
use crate::wire::{
    CreateTopic, FetchQuery, OCTET_STREAM, ProduceQuery, Seek, Seeked, TopicSettings,
};
pub use crate::wire::{GroupLag, Moved, PartitionLag, Produced, SeekTo, TopicInfo, position};

/// Everything that can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {url:?}: expected http://HOST:PORT (https is not built in)")]
    BadUrl { url: String },
    #[error("could not reach the weir server at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the server answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("unexpected response from {url}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected binary response")]
    Frame(#[from] FrameError),
}

impl ClientError {
    /// The HTTP status the server answered, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An uploaded component: its SHA-256 and size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Component {
    pub id: String,
    pub bytes: u64,
}

/// A processor's status. The fields the CLI shows are typed; everything else
/// the server sends is kept in `rest`, so `--json` prints it all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessorStatus {
    pub name: String,
    pub topics: Vec<String>,
    pub group: String,
    pub version: String,
    pub instances: u64,
    pub state: String,
    pub error: Option<String>,
    pub lag: u64,
    pub processed: u64,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: reqwest::Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `url` (`http://HOST:PORT`), sending `token`
    /// as a bearer token when given.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, ClientError> {
        let base = reqwest::Url::parse(url)
            .ok()
            .filter(|u| u.scheme() == "http" && u.has_host() && !u.cannot_be_a_base())
            .ok_or_else(|| ClientError::BadUrl {
                url: url.to_string(),
            })?;
        Ok(Client {
            base,
            token,
            http: reqwest::Client::new(),
        })
    }

    /// The URL of `segments` (each escaped as one path segment).
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn request(&self, method: reqwest::Method, segments: &[&str]) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(segments));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends the request; an error status becomes [`ClientError::Api`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.base.to_string();
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable { url, source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let url = response.url().to_string();
        response
            .json()
            .await
            .map_err(|source| ClientError::Decode { url, source })
    }

    fn get(&self, segments: &[&str]) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, segments)
    }

    fn post(&self, segments: &[&str]) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, segments)
    }

    fn delete(&self, segments: &[&str]) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, segments)
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(self.get(&["health"])).await.map(drop)
    }

    /// `GET /topics`.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>, ClientError> {
        self.json(self.get(&["topics"])).await
    }

    /// `GET /topics/{topic}`.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo, ClientError> {
        self.json(self.get(&["topics", name])).await
    }

    /// `POST /topics`, with default settings.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> Result<TopicInfo, ClientError> {
        self.create_topic_with(&CreateTopic::new(name, partitions))
            .await
    }

    /// `POST /topics`.
    pub async fn create_topic_with(&self, topic: &CreateTopic) -> Result<TopicInfo, ClientError> {
        self.json(self.post(&["topics"]).json(topic)).await
    }

    /// `PATCH /topics/{topic}`.
    pub async fn alter_topic(
        &self,
        name: &str,
        settings: &TopicSettings,
    ) -> Result<TopicInfo, ClientError> {
        let request = self.request(reqwest::Method::PATCH, &["topics", name]);
        self.json(request.json(settings)).await
    }

    /// `DELETE /topics/{topic}`.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.delete(&["topics", name])).await.map(drop)
    }

    /// `POST /topics/{topic}/records`, binary: to `partition`, or by the
    /// server's placement rule. Many records go in several requests, each
    /// within the default batch limits (the server splits them further by
    /// the topic's own limits), so no body nears the server's size limit.
    pub async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        records: &[Record],
    ) -> Result<Produced, ClientError> {
        let mut produced = Produced {
            batches: Vec::new(),
            count: 0,
        };
        let chunks = crate::log::chunks(
            records,
            crate::log::DEFAULT_MAX_BATCH_RECORDS,
            crate::log::DEFAULT_MAX_BATCH_BYTES,
        );
        for chunk in chunks {
            let request = self
                .post(&["topics", topic, "records"])
                .header(reqwest::header::CONTENT_TYPE, OCTET_STREAM)
                .query(&ProduceQuery { partition })
                .body(frame::encode_records(chunk));
            let part: Produced = self.json(request).await?;
            produced.batches.extend(part.batches);
            produced.count += part.count;
        }
        Ok(produced)
    }

    /// `GET /topics/{topic}/partitions/{p}/records`, binary.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<Vec<StoredRecord>, ClientError> {
        let p = partition.to_string();
        let request = self
            .get(&["topics", topic, "partitions", &p, "records"])
            .header(reqwest::header::ACCEPT, OCTET_STREAM)
            .query(&FetchQuery {
                offset,
                max_records,
                max_bytes,
            });
        let response = self.send(request).await?;
        let url = response.url().to_string();
        let body = response
            .bytes()
            .await
            .map_err(|source| ClientError::Decode { url, source })?;
        Ok(frame::decode_stored(&body)?)
    }

    /// `GET /groups`.
    pub async fn groups(&self) -> Result<Vec<String>, ClientError> {
        self.json(self.get(&["groups"])).await
    }

    /// `GET /groups/{group}`.
    pub async fn group(&self, name: &str) -> Result<GroupLag, ClientError> {
        self.json(self.get(&["groups", name])).await
    }

    /// `POST /groups/{group}/seek`.
    pub async fn seek(
        &self,
        group: &str,
        to: SeekTo,
        topic: Option<&str>,
        partition: Option<u32>,
    ) -> Result<Vec<Moved>, ClientError> {
        let body = Seek::new(to, topic.map(str::to_string), partition);
        let seeked: Seeked = self
            .json(self.post(&["groups", group, "seek"]).json(&body))
            .await?;
        Ok(seeked.moved)
    }

    /// `POST /components`: uploads a wasm component.
    pub async fn upload_component(&self, wasm: Vec<u8>) -> Result<Component, ClientError> {
        let request = self
            .post(&["components"])
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(wasm);
        self.json(request).await
    }

    /// `GET /processors`.
    pub async fn processors(&self) -> Result<Vec<ProcessorStatus>, ClientError> {
        self.json(self.get(&["processors"])).await
    }

    /// `GET /processors/{name}`.
    pub async fn processor(&self, name: &str) -> Result<ProcessorStatus, ClientError> {
        self.json(self.get(&["processors", name])).await
    }

    /// `GET /processors/{name}/state/{key}`.
    pub async fn state(
        &self,
        name: &str,
        key: &str,
        partition: Option<u32>,
    ) -> Result<crate::wire::StateEntry, ClientError> {
        let query = crate::wire::StateQuery { partition };
        self.json(self.get(&["processors", name, "state", key]).query(&query))
            .await
    }

    /// `GET /processors/{name}/logs`: a page of the guests' output; with
    /// `follow`, the server holds the request until a line comes (or 25 s).
    pub async fn logs(
        &self,
        name: &str,
        query: &crate::wire::LogQuery,
    ) -> Result<crate::wire::LogPage, ClientError> {
        self.json(self.get(&["processors", name, "logs"]).query(query))
            .await
    }

    /// `GET /history`: what was done to the processors, oldest first.
    pub async fn history(&self) -> Result<Vec<crate::supervisor::Event>, ClientError> {
        self.json(self.get(&["history"])).await
    }

    /// `PUT /processors/{name}`.
    pub async fn create_processor(
        &self,
        name: &str,
        body: &NewProcessor,
    ) -> Result<ProcessorStatus, ClientError> {
        let request = self.request(reqwest::Method::PUT, &["processors", name]);
        self.json(request.json(body)).await
    }

    /// `POST /processors/{name}/swap`: a new component, optionally rewinding,
    /// with changes to the settings.
    pub async fn swap(&self, name: &str, body: &Swap) -> Result<ProcessorStatus, ClientError> {
        self.json(self.post(&["processors", name, "swap"]).json(body))
            .await
    }

    /// `POST /processors/{name}/rewind`.
    pub async fn rewind(
        &self,
        name: &str,
        to: &crate::supervisor::RewindTo,
    ) -> Result<ProcessorStatus, ClientError> {
        let body = serde_json::json!({"to": to.to_json()});
        self.json(self.post(&["processors", name, "rewind"]).json(&body))
            .await
    }

    /// `POST /processors/{name}/pause`.
    pub async fn pause(&self, name: &str) -> Result<ProcessorStatus, ClientError> {
        self.json(self.post(&["processors", name, "pause"])).await
    }

    /// `POST /processors/{name}/resume`.
    pub async fn resume(&self, name: &str) -> Result<ProcessorStatus, ClientError> {
        self.json(self.post(&["processors", name, "resume"])).await
    }

    /// `POST /processors/{name}/scale`.
    pub async fn scale(&self, name: &str, instances: u32) -> Result<ProcessorStatus, ClientError> {
        let body = serde_json::json!({"instances": instances});
        self.json(self.post(&["processors", name, "scale"]).json(&body))
            .await
    }

    /// `DELETE /processors/{name}`, with `?keep_dlq=true` when `keep_dlq`.
    pub async fn delete_processor(&self, name: &str, keep_dlq: bool) -> Result<(), ClientError> {
        let request = self.delete(&["processors", name]);
        let request = if keep_dlq {
            request.query(&[("keep_dlq", "true")])
        } else {
            request
        };
        self.send(request).await.map(drop)
    }

    /// `POST /processors/{name}/shadow`: runs `component` as `{name}.shadow`
    /// from `from`.
    pub async fn shadow(
        &self,
        name: &str,
        component: &str,
        label: Option<&str>,
        from: SeekTo,
    ) -> Result<ProcessorStatus, ClientError> {
        let body =
            serde_json::json!({"component": component, "label": label, "from": position(from)});
        self.json(self.post(&["processors", name, "shadow"]).json(&body))
            .await
    }

    /// `POST /processors/{name}/shadow/promote`.
    pub async fn promote_shadow(&self, name: &str) -> Result<ProcessorStatus, ClientError> {
        self.json(self.post(&["processors", name, "shadow", "promote"]))
            .await
    }

    /// `DELETE /processors/{name}/shadow`.
    pub async fn drop_shadow(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.delete(&["processors", name, "shadow"]))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_base_urls_are_accepted() {
        for bad in [
            "localhost:7070",
            "ftp://h/",
            "https://h:1",
            "mailto:x@y",
            "",
        ] {
            assert!(
                matches!(Client::new(bad, None), Err(ClientError::BadUrl { .. })),
                "{bad}"
            );
        }
        assert!(Client::new("http://127.0.0.1:7070", None).is_ok());
    }

    #[test]
    fn names_become_single_escaped_segments_under_the_base_path() {
        let client = Client::new("http://h:1/weir/", None).unwrap();
        assert_eq!(
            client.url(&["topics", "../x", "a/b"]).path(),
            "/weir/topics/..%2Fx/a%2Fb"
        );
        let client = Client::new("http://h:1", None).unwrap();
        assert_eq!(client.url(&["groups", "g"]).as_str(), "http://h:1/groups/g");
    }
}
