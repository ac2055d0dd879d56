"""What the application needs from the outside world, as small interfaces, one module per area.

Services and the OCPP handlers (`chargenet.services`) take these; adapters (`chargenet.adapters`)
implement them and name the port in their class line (`class DynamoChargerRegistry(ChargerRegistry)`);
the in-memory fakes in `tests/` do the same. A port raises `errors.StoreUnavailable` when its backing
store or service cannot be reached: no botocore or pynamodb exception crosses a port.

    registry        ChargerRegistry
    messaging       PendingCalls, ChargerChannel, Deduplicator
    sessions        SessionStore, StoppedSessions
    tags_tariffs    TagDirectory, TariffBook, MemberTariffs
    faults          FaultMonitor, FaultStore, AlertPublisher, Fleet, ActiveSessions
    billing         BillableSessions, CdrStore
    subscriptions   SubscriberStore, TagGate, BillingGateway, OperatorAlerts
    provisioning    AllowList
    certificates    CertificateAuthority
    errors          StoreUnavailable

The payment ports live with the payment services (`chargenet.services.payments`).
"""
