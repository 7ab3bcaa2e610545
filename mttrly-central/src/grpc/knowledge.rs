//! `mttrly.central.v1.KnowledgeService`: `mttrly-cli knowledge`. The rules are in
//! `crate::knowledge`; this only converts the wire form.

use std::sync::Arc;

use mttrly_core::ids::{KnowledgeId, ServerId};
use mttrly_core::tools::investigations::Title;
use mttrly_core::tools::knowledge::{KnowledgeBody, KnowledgeEntry as Entry, KnowledgeKind};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::knowledge_service_server::KnowledgeService;
use mttrly_proto::central::v1::{
    AddKnowledgeRequest, AddKnowledgeResponse, GetKnowledgeRequest, GetKnowledgeResponse, KnowledgeEntry,
    ListKnowledgeRequest, ListKnowledgeResponse, RemoveKnowledgeRequest, RemoveKnowledgeResponse,
};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::knowledge::{self, AddKnowledge};
use crate::state::Central;

/// The knowledge service.
pub struct KnowledgeApi {
    central: Arc<Central>,
}

impl KnowledgeApi {
    /// Serves `central`'s knowledge base.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn invalid(field: &str, message: String) -> tonic::Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field))
}

fn kind(s: &str) -> Result<Option<KnowledgeKind>, tonic::Status> {
    match s {
        "" => Ok(None),
        other => KnowledgeKind::parse(other)
            .map(Some)
            .ok_or_else(|| invalid("kind", format!("unknown kind `{other}`: expected postmortem, recipe or note"))),
    }
}

fn server(s: &str) -> Result<Option<ServerId>, tonic::Status> {
    match s {
        "" => Ok(None),
        s => ServerId::parse(s).map(Some).map_err(|e| invalid("server_id", e.to_string())),
    }
}

fn id(s: &str) -> Result<KnowledgeId, tonic::Status> {
    KnowledgeId::parse(s).map_err(|e| invalid("knowledge_id", e.to_string()))
}

fn wire(e: Entry) -> KnowledgeEntry {
    KnowledgeEntry {
        knowledge_id: e.knowledge_id.to_string(),
        kind: e.kind.as_str().to_owned(),
        title: e.title,
        body: e.body,
        server_id: e.server_id.map(|s| s.to_string()).unwrap_or_default(),
        author_json: serde_json::to_string(&e.provenance.author).unwrap_or_default(),
        source: e.provenance.source.as_str().to_owned(),
        content_sha256: e.content_sha256,
        created_at_unix_ms: e.created_at.as_millisecond(),
    }
}

#[tonic::async_trait]
impl KnowledgeService for KnowledgeApi {
    async fn add_knowledge(&self, request: Request<AddKnowledgeRequest>) -> GrpcResult<AddKnowledgeResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let input = AddKnowledge {
            kind: kind(&req.kind)?.ok_or_else(|| invalid("kind", "a kind is required".to_owned()))?,
            title: Title::new(req.title).map_err(|e| invalid("title", format!("title {e}")))?,
            body: KnowledgeBody::new(req.body).map_err(|e| invalid("body", format!("body {e}")))?,
            server_id: server(&req.server_id)?,
        };
        let entry = knowledge::add(&self.central, &owner, input).await.map_err(|e| status(&e))?;
        Ok(Response::new(AddKnowledgeResponse { entry: Some(wire(entry)) }))
    }

    async fn list_knowledge(&self, request: Request<ListKnowledgeRequest>) -> GrpcResult<ListKnowledgeResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => 50,
            n if n > knowledge::MAX_LIST => {
                return Err(invalid("limit", format!("limit must be at most {}", knowledge::MAX_LIST)));
            }
            n => n,
        };
        let entries = knowledge::list(&self.central, &owner, kind(&req.kind)?, server(&req.server_id)?, limit)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(ListKnowledgeResponse { entries: entries.into_iter().map(wire).collect() }))
    }

    async fn get_knowledge(&self, request: Request<GetKnowledgeRequest>) -> GrpcResult<GetKnowledgeResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = id(&request.get_ref().knowledge_id)?;
        let entry = knowledge::show(&self.central, &owner, &id).await.map_err(|e| status(&e))?;
        Ok(Response::new(GetKnowledgeResponse { entry: Some(wire(entry)) }))
    }

    async fn remove_knowledge(&self, request: Request<RemoveKnowledgeRequest>) -> GrpcResult<RemoveKnowledgeResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = id(&request.get_ref().knowledge_id)?;
        let entry = knowledge::remove(&self.central, &owner, &id).await.map_err(|e| status(&e))?;
        Ok(Response::new(RemoveKnowledgeResponse { entry: Some(wire(entry)) }))
    }
}
