//! In-process bus: a direct call into this node's hub (single-node mode).

use std::sync::Arc;

use super::{Bus, BusEvent, BusSink};

pub struct LocalBus {
    sink: Arc<dyn BusSink>,
}

impl LocalBus {
    pub fn new(sink: Arc<dyn BusSink>) -> Self {
        LocalBus { sink }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: BusEvent) {
        self.sink.deliver(event);
    }
}
