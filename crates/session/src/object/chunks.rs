//! Resumable (chunked) uploads on the object store: the chunks of one upload may reach any
//! worker of any host, in any order, more than once, so they live in the bucket, under
//! `uploads/<id>/chunks/<upload id>/`:
//! - `<part>.<index>`: one chunk (a PUT replaces an earlier copy whole);
//! - `parts.json`: the total each part announced first (compare-and-swap);
//! - `result.json`: the answer of the finalize that committed the upload (repeated finalizes
//!   return it).
//!
//! Exactly once: the commit records the upload id in the manifest (`upload.chunked_upload`) in
//! the same compare-and-swap, and refuses to commit an upload id the manifest already names, so
//! two hosts finalizing at once commit one generation. The per-upload byte limit is checked
//! against what the bucket holds when a chunk arrives, and again, whole, at finalize.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde_json::Value;

use super::{ObjectBackend, os_error};
use crate::chunks::{AssembledPart, Chunk, ChunkLimits, ChunkStatus, PartStatus, check_part};
use crate::error::{Error, Result};
use crate::id::SessionId;

const CAS_TRIES: u32 = 20;

impl ObjectBackend {
    fn chunk_key(&self, id: &SessionId, upload_id: &str, name: &str) -> object_store::path::Path {
        self.key(id, &format!("chunks/{upload_id}/{name}"))
    }

    /// The chunks held, by part: `(index, size)`; and whether a result is remembered.
    async fn chunk_listing(
        &self,
        id: &SessionId,
        upload_id: &str,
    ) -> Result<(BTreeMap<String, Vec<(u32, u64)>>, bool, bool)> {
        let base = self.key(id, &format!("chunks/{upload_id}"));
        let listed: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(os_error("list", &base))?;
        let mut parts: BTreeMap<String, Vec<(u32, u64)>> = BTreeMap::new();
        let mut finalized = false;
        for meta in &listed {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if name == "result.json" {
                finalized = true;
                continue;
            }
            if let Some((part, index)) = name.rsplit_once('.')
                && let Ok(index) = index.parse::<u32>()
            {
                parts
                    .entry(part.to_owned())
                    .or_default()
                    .push((index, meta.size));
            }
        }
        Ok((parts, finalized, !listed.is_empty()))
    }

    async fn totals(
        &self,
        id: &SessionId,
        upload_id: &str,
    ) -> Result<(BTreeMap<String, u32>, Option<UpdateVersion>)> {
        let key = self.chunk_key(id, upload_id, "parts.json");
        match self.store.get(&key).await {
            Ok(got) => {
                let version = UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                let totals = serde_json::from_slice(&bytes).map_err(super::json_error(&key))?;
                Ok((totals, Some(version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok((BTreeMap::new(), None)),
            Err(e) => Err(os_error("read", &key)(e)),
        }
    }

    async fn status_now(&self, id: &SessionId, upload_id: &str) -> Result<ChunkStatus> {
        let (totals, _) = self.totals(id, upload_id).await?;
        let (held, finalized, _) = self.chunk_listing(id, upload_id).await?;
        let mut status = ChunkStatus {
            upload_id: upload_id.to_owned(),
            finalized,
            ..ChunkStatus::default()
        };
        for (part, total) in totals {
            let mut received = Vec::new();
            for (index, size) in held.get(&part).map(Vec::as_slice).unwrap_or_default() {
                if *index < total {
                    received.push(*index);
                    status.bytes += size;
                }
            }
            received.sort_unstable();
            received.dedup();
            status.parts.insert(part, PartStatus { total, received });
        }
        Ok(status)
    }

    /// Stores one chunk (the rules of the local store's `put_chunk`).
    pub async fn put_chunk(
        &self,
        id: &SessionId,
        chunk: Chunk<'_>,
        limits: &ChunkLimits,
    ) -> Result<ChunkStatus> {
        crate::chunks::check_upload_id(chunk.upload_id)?;
        crate::chunks::check_chunk(&chunk, limits)?;
        let size = chunk.bytes.len() as u64;
        self.load(id).await?; // a minted session only
        // The part's total: fixed by its first chunk, compare-and-swap on parts.json.
        let key = self.chunk_key(id, chunk.upload_id, "parts.json");
        let mut settled = false;
        for attempt in 0..CAS_TRIES {
            let (mut totals, version) = self.totals(id, chunk.upload_id).await?;
            match totals.get(chunk.part) {
                Some(&total) if total != chunk.total => {
                    return Err(Error::BadChunk(format!(
                        "total_chunks {} differs from the {total} this upload's {} announced",
                        chunk.total, chunk.part
                    )));
                }
                Some(_) => {
                    settled = true;
                    break;
                }
                None => {}
            }
            totals.insert(chunk.part.to_owned(), chunk.total);
            let bytes = serde_json::to_vec(&totals).map_err(super::json_error(&key))?;
            let mode = match version {
                Some(v) => PutMode::Update(v),
                None => PutMode::Create,
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => {
                    settled = true;
                    break;
                }
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => super::backoff(attempt).await,
                Err(e) => return Err(os_error("write", &key)(e)),
            }
        }
        if !settled {
            return Err(Error::Busy(id.to_string()));
        }
        let before = self.status_now(id, chunk.upload_id).await?;
        if before.finalized {
            return Err(Error::BadChunk(format!(
                "upload {} is already finalized",
                chunk.upload_id
            )));
        }
        let (held, _, _) = self.chunk_listing(id, chunk.upload_id).await?;
        let replaced = held
            .get(chunk.part)
            .and_then(|c| c.iter().find(|(i, _)| *i == chunk.index))
            .map_or(0, |(_, s)| *s);
        let after = before.bytes - replaced.min(before.bytes) + size;
        if after > limits.max_upload_bytes {
            return Err(Error::TooLarge(format!(
                "this upload would reach {after} bytes, over the limit of {} bytes",
                limits.max_upload_bytes
            )));
        }
        let key = self.chunk_key(
            id,
            chunk.upload_id,
            &format!("{}.{}", chunk.part, chunk.index),
        );
        self.store
            .put(&key, PutPayload::from(Bytes::copy_from_slice(chunk.bytes)))
            .await
            .map_err(os_error("write", &key))?;
        self.status_now(id, chunk.upload_id).await
    }

    /// What the bucket holds of an upload; `None` without any chunk of it.
    pub async fn chunk_status(
        &self,
        id: &SessionId,
        upload_id: &str,
    ) -> Result<Option<ChunkStatus>> {
        crate::chunks::check_upload_id(upload_id)?;
        self.load(id).await?;
        let (_, _, any) = self.chunk_listing(id, upload_id).await?;
        if !any {
            return Ok(None);
        }
        self.status_now(id, upload_id).await.map(Some)
    }

    /// The remembered answer of a finalized upload.
    pub(crate) async fn chunk_result(
        &self,
        id: &SessionId,
        upload_id: &str,
    ) -> Result<Option<Value>> {
        let key = self.chunk_key(id, upload_id, "result.json");
        match self.store.get(&key).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(os_error("read", &key))?;
                Ok(Some(
                    serde_json::from_slice(&bytes).map_err(super::json_error(&key))?,
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os_error("read", &key)(e)),
        }
    }

    /// Checks every expected part complete (else [`Error::IncompleteUpload`] naming what is
    /// missing) and joins each part's chunks.
    pub(crate) async fn assemble_chunks(
        &self,
        id: &SessionId,
        upload_id: &str,
        expected: &[(&str, u32)],
        max_upload_bytes: Option<u64>,
    ) -> Result<Vec<AssembledPart>> {
        let status = self.status_now(id, upload_id).await?;
        let mut missing = Vec::new();
        for (part, total) in expected {
            check_part(part)?;
            match status.parts.get(*part) {
                Some(slot) if slot.total != *total => {
                    return Err(Error::BadChunk(format!(
                        "{part}: finalize says {total} chunks, the chunks said {}",
                        slot.total
                    )));
                }
                Some(slot) => {
                    let gaps = slot.missing();
                    if !gaps.is_empty() {
                        let gaps: Vec<String> = gaps.iter().map(u32::to_string).collect();
                        missing.push(format!("{part} chunks {}", gaps.join(", ")));
                    }
                }
                None => missing.push(format!("every {part} chunk (0..{total})")),
            }
        }
        if !missing.is_empty() {
            return Err(Error::IncompleteUpload(format!(
                "upload {upload_id} is missing {}; send them and finalize again",
                missing.join(", ")
            )));
        }
        if let Some(max) = max_upload_bytes
            && status.bytes > max
        {
            return Err(Error::TooLarge(format!(
                "this upload reached {} bytes, over the limit of {max} bytes",
                status.bytes
            )));
        }
        let mut assembled = Vec::new();
        for (part, total) in expected {
            let reads = (0..*total).map(|index| {
                let key = self.chunk_key(id, upload_id, &format!("{part}.{index}"));
                async move {
                    match self.store.get(&key).await {
                        Ok(got) => got.bytes().await.map_err(os_error("read", &key)),
                        Err(e) => Err(os_error("read", &key)(e)),
                    }
                }
            });
            let chunks = futures_util::future::try_join_all(reads).await?;
            let mut bytes = Vec::new();
            for c in chunks {
                bytes.extend_from_slice(&c);
            }
            assembled.push(AssembledPart {
                part: (*part).to_owned(),
                bytes,
            });
        }
        Ok(assembled)
    }

    /// Remembers a finalize's answer and deletes the spent chunks (best effort).
    pub(crate) async fn remember_chunk_result(
        &self,
        id: &SessionId,
        upload_id: &str,
        answer: &Value,
    ) -> Result<()> {
        let key = self.chunk_key(id, upload_id, "result.json");
        let bytes = serde_json::to_vec(answer).map_err(super::json_error(&key))?;
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(os_error("write", &key))?;
        let base = self.key(id, &format!("chunks/{upload_id}"));
        if let Ok(listed) = self.store.list(Some(&base)).try_collect::<Vec<_>>().await {
            for meta in listed {
                if meta.location.filename() != Some("result.json") {
                    let _ = self.store.delete(&meta.location).await;
                }
            }
        }
        Ok(())
    }

    /// True when the manifest's upload came from this chunked upload.
    pub(crate) async fn committed_chunked(&self, id: &SessionId, upload_id: &str) -> Result<bool> {
        let (m, _) = self.load(id).await?;
        Ok(m.upload
            .as_ref()
            .is_some_and(|u| u.chunked_upload.as_deref() == Some(upload_id)))
    }

    /// True when any object of this upload exists.
    pub(crate) async fn any_chunk(&self, id: &SessionId, upload_id: &str) -> Result<bool> {
        Ok(self.chunk_listing(id, upload_id).await?.2)
    }
}
