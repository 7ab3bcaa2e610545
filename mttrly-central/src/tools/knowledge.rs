//! `mttrly_search_knowledge` (the rules live in `crate::knowledge`).

use mttrly_core::MttrlyError;
use mttrly_core::tools::knowledge::{KnowledgeResults, SearchKnowledgeInput};

use crate::db::accounts::TokenOwner;
use crate::state::Central;

pub(crate) async fn search(
    central: &Central,
    caller: &TokenOwner,
    input: SearchKnowledgeInput,
) -> Result<KnowledgeResults, MttrlyError> {
    crate::knowledge::search(central, caller, &input).await
}
