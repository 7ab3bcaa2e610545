//! The war room's tools (the rules live in `crate::warroom`).

use mttrly_core::tools::notify::{
    ChannelCreated, ChannelList, CreateChannelInput, GetIncidentStatsInput, GetIncidentSummaryInput,
    GetNotificationsInput, GetThreadInput, IncidentStats, IncidentSummary, ListChannelsInput, Notification,
    NotificationPage, PublishNotificationInput, SubscribeChannelInput, Subscribed, Thread, UnsubscribeChannelInput,
    Unsubscribed,
};
use mttrly_core::{MttrlyError, Source};

use crate::db::accounts::TokenOwner;
use crate::state::Central;
use crate::warroom;

pub(crate) async fn publish(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: PublishNotificationInput,
) -> Result<Notification, MttrlyError> {
    warroom::publish(central, caller, source, input).await
}

pub(crate) async fn list_channels(
    central: &Central,
    caller: &TokenOwner,
    _input: ListChannelsInput,
) -> Result<ChannelList, MttrlyError> {
    warroom::list_channels(central, caller).await
}

pub(crate) async fn create_channel(
    central: &Central,
    caller: &TokenOwner,
    source: Source,
    input: CreateChannelInput,
) -> Result<ChannelCreated, MttrlyError> {
    warroom::create_channel(central, caller, source, input).await
}

pub(crate) async fn thread(
    central: &Central,
    caller: &TokenOwner,
    input: GetThreadInput,
) -> Result<Thread, MttrlyError> {
    warroom::thread(central, caller, input).await
}

pub(crate) async fn notifications(
    central: &Central,
    caller: &TokenOwner,
    input: GetNotificationsInput,
) -> Result<NotificationPage, MttrlyError> {
    warroom::notifications(central, caller, input).await
}

pub(crate) async fn incident_summary(
    central: &Central,
    caller: &TokenOwner,
    input: GetIncidentSummaryInput,
) -> Result<IncidentSummary, MttrlyError> {
    warroom::incident_summary(central, caller, input).await
}

pub(crate) async fn incident_stats(
    central: &Central,
    caller: &TokenOwner,
    input: GetIncidentStatsInput,
) -> Result<IncidentStats, MttrlyError> {
    warroom::incident_stats(central, caller, input).await
}

pub(crate) async fn subscribe(
    central: &Central,
    caller: &TokenOwner,
    input: SubscribeChannelInput,
) -> Result<Subscribed, MttrlyError> {
    warroom::subscribe(central, caller, input).await
}

pub(crate) async fn unsubscribe(
    central: &Central,
    caller: &TokenOwner,
    input: UnsubscribeChannelInput,
) -> Result<Unsubscribed, MttrlyError> {
    warroom::unsubscribe(central, caller, input).await
}
