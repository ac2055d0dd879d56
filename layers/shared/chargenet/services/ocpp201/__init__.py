"""What the backend does with each CALL an OCPP 2.0.1 charger sends: the same domain as 1.6.

The handlers translate 2.0.1's shapes (EVSEs, idTokens, TransactionEvents, the device model)
into the domain's terms and call the same ports and domain functions the 1.6 handlers do
(`chargenet.services.ocpp`): the domain below does not know which version a message came in.
Our connector id is the 2.0.1 EVSE id (an EVSE charges one car at a time).

    charger_calls       BootNotification, Heartbeat, StatusNotification, NotifyEvent,
                        SecurityEventNotification, FirmwareStatusNotification,
                        LogStatusNotification, NotifyReport
    certificate_calls   SignCertificate (CertificateSigned after the reply)
    transaction_events  Authorize, TransactionEvent, MeterValues
"""
