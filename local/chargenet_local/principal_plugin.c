/*
 * mosquitto plugin: IoT Core's principal() for the local rules engine.
 *
 * IoT Core tells a rule which certificate the publishing connection was made with (principal():
 * the certificate id, the SHA-256 of its DER). MQTT tells a subscriber nothing about the
 * publisher, and mosquitto's log names only the client id and the certificate's CN, the same for
 * a charger's old and new certificate. So the broker itself, which holds the TLS session, stamps
 * every Basic Ingest publish: `$aws/rules/...` is delivered as
 * `$chargenet/principal/<sha256 of the DER>/$aws/rules/...`. The ACL lets no charger publish
 * there itself, and the stack subscribes only to the stamped form, so an unstamped publish
 * reaches no rule.
 *
 * Built by chargenet_local.broker with the system C compiler against Debian's mosquitto-dev
 * (the plugin API, version 5, mosquitto 2.0) and libssl-dev (`make deps` installs both).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

static const char RULES[] = "$aws/rules/";
static const char STAMP[] = "$chargenet/principal/";
static mosquitto_plugin_id_t *plugin_id;

/* The hex SHA-256 of the client's certificate into `hex` (65 bytes); false without one. */
static bool certificate_id(const struct mosquitto *client, char *hex)
{
	X509 *certificate = mosquitto_client_certificate(client);
	if(!certificate) return false;
	unsigned char *der = NULL;
	int length = i2d_X509(certificate, &der);
	X509_free(certificate);
	if(length <= 0) return false;
	unsigned char digest[32];
	SHA256(der, (size_t)length, digest);
	OPENSSL_free(der);
	for(int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return true;
}

static int on_message(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_message *message = event_data;
	char hex[65];
	if(strncmp(message->topic, RULES, sizeof(RULES) - 1) != 0) return MOSQ_ERR_SUCCESS;
	if(!certificate_id(message->client, hex)) return MOSQ_ERR_SUCCESS; /* unstamped: no rule hears it */
	size_t size = sizeof(STAMP) - 1 + 64 + 1 + strlen(message->topic) + 1;
	char *topic = mosquitto_malloc(size);
	if(!topic) return MOSQ_ERR_NOMEM;
	snprintf(topic, size, "%s%s/%s", STAMP, hex, message->topic);
	message->topic = topic; /* the broker frees the topic it replaces */
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
}
