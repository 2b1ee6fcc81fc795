/* smartbins_auth: who may use which client id and subscribe to what, for Mosquitto 2.0.
 *
 * Mosquitto 2.0's acl_file checks publishes and deliveries but not subscriptions, and lets any
 * client use any client id. So a device could join the gateways' shared subscription (and make
 * readings vanish: the broker hands a member its share and then drops what its ACL may not
 * read), subscribe to `#`, or connect with another client's id and take over its session. This
 * plugin closes those two holes and nothing else; passwords stay in password_file and
 * publish/read rules in acl_file, whose `%u` patterns cover the whole fleet in a few lines.
 *
 * Rules (accounts: a username with a dot is a service account; device ids cannot have one):
 *   client id  a device must connect with its own username as client id; a service account
 *              with its username, or its username followed by '-' and anything.
 *   subscribe  a filter is granted only if one of the patterns listed for the account
 *              (options below) covers it, level by level: `%u` is the username, a `+` level
 *              any one level, a `*` level any one level name (a shared-subscription group);
 *              all else must be equal, and `#` is never covered. Every other filter, `#` and
 *              a device's `$share/...` included, is refused (SUBACK 0x80/0x87).
 *   publish, read   not decided here: acl_file decides.
 *
 * Options (mosquitto.conf):
 *   plugin_opt_device_subscribe          FILTER...   filters any device may subscribe to
 *   plugin_opt_subscribe_<account>       FILTER...   filters that service account may use
 *
 * Build: cc -shared -fPIC -O2 -Wall -o smartbins_auth.so smartbins_auth.c
 * (headers from Debian's mosquitto-dev and libmosquitto-dev). Licence Apache-2.0.
 */

#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_RULES 64
#define MAX_FILTERS 16

struct rule {
	char *account; /* NULL: every device */
	char *filters[MAX_FILTERS];
	int count;
};

static mosquitto_plugin_id_t *plugin_id;
static struct rule rules[MAX_RULES];
static int rule_count;

static bool is_service(const char *username)
{
	return strchr(username, '.') != NULL;
}

/* One topic level of a pattern against one level of a filter (lengths given): `%u` stands
 * for the username, a level `+` for any one level but `#`, a level `*` for any one non-empty
 * level (a shared-subscription group name); anything else must be equal. */
static bool level_matches(const char *pat, size_t plen, const char *flt, size_t flen,
		const char *username)
{
	size_t ulen = strlen(username);
	size_t i = 0, k = 0;

	if(plen == 1 && (pat[0] == '+' || pat[0] == '*')){
		return flen > 0 && !(flen == 1 && flt[0] == '#');
	}
	while(i < plen){
		if(i + 1 < plen && pat[i] == '%' && pat[i + 1] == 'u'){
			if(flen - k < ulen || strncmp(flt + k, username, ulen)) return false;
			k += ulen;
			i += 2;
		}else{
			if(k >= flen || flt[k] != pat[i]) return false;
			k++;
			i++;
		}
	}
	return k == flen;
}

/* Does the allowed `pattern` cover the requested `filter`? Level by level, the same number of
 * levels (so `#` in a filter is covered only by a literal `#` level, which no rule has): every
 * topic the filter matches is one the pattern allows. */
static bool matches(const char *pattern, const char *filter, const char *username)
{
	const char *p = pattern, *f = filter;

	while(true){
		const char *pe = strchr(p, '/');
		const char *fe = strchr(f, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t flen = fe ? (size_t)(fe - f) : strlen(f);

		if(!level_matches(p, plen, f, flen, username)) return false;
		if(!pe || !fe) return !pe && !fe;
		p = pe + 1;
		f = fe + 1;
	}
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *id;
	size_t ulen;

	(void)event;
	(void)userdata;
	if(ed->username == NULL) return MOSQ_ERR_PLUGIN_DEFER; /* anonymous: refused elsewhere */
	id = mosquitto_client_id(ed->client);
	if(id == NULL) return MOSQ_ERR_AUTH;
	ulen = strlen(ed->username);
	if(!strcmp(id, ed->username)) return MOSQ_ERR_PLUGIN_DEFER; /* the password file decides */
	if(is_service(ed->username) && !strncmp(id, ed->username, ulen) && id[ulen] == '-'){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"smartbins_auth: refused %s: client id %s is not its own", ed->username, id);
	return MOSQ_ERR_AUTH;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username;
	int i, k;

	(void)event;
	(void)userdata;
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	if(ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER; /* acl_file decides */
	username = mosquitto_client_username(ed->client);
	if(username == NULL) return MOSQ_ERR_ACL_DENIED;
	for(i = 0; i < rule_count; i++){
		if(rules[i].account == NULL ? is_service(username) : strcmp(rules[i].account, username)){
			continue;
		}
		for(k = 0; k < rules[i].count; k++){
			if(matches(rules[i].filters[k], ed->topic, username)) return MOSQ_ERR_SUCCESS;
		}
	}
	return MOSQ_ERR_ACL_DENIED;
}

static int add_rule(const char *account, const char *value)
{
	struct rule *r;
	char *copy, *token, *save = NULL;

	if(rule_count == MAX_RULES){
		mosquitto_log_printf(MOSQ_LOG_ERR, "smartbins_auth: more than %d rules", MAX_RULES);
		return MOSQ_ERR_INVAL;
	}
	r = &rules[rule_count++];
	r->account = account ? strdup(account) : NULL;
	copy = strdup(value);
	if(copy == NULL || (account && r->account == NULL)) return MOSQ_ERR_NOMEM;
	for(token = strtok_r(copy, " \t", &save); token; token = strtok_r(NULL, " \t", &save)){
		if(r->count == MAX_FILTERS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "smartbins_auth: more than %d filters", MAX_FILTERS);
			free(copy);
			return MOSQ_ERR_INVAL;
		}
		r->filters[r->count] = strdup(token);
		if(r->filters[r->count] == NULL){
			free(copy);
			return MOSQ_ERR_NOMEM;
		}
		r->count++;
	}
	free(copy);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
		struct mosquitto_opt *opts, int opt_count)
{
	int i, rc;
	const char *prefix = "subscribe_";

	(void)user_data;
	plugin_id = identifier;
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "device_subscribe")){
			rc = add_rule(NULL, opts[i].value);
		}else if(!strncmp(opts[i].key, prefix, strlen(prefix))
				&& is_service(opts[i].key + strlen(prefix))){
			rc = add_rule(opts[i].key + strlen(prefix), opts[i].value);
		}else{
			mosquitto_log_printf(MOSQ_LOG_ERR, "smartbins_auth: unknown option plugin_opt_%s "
					"(known: device_subscribe, subscribe_<service account>)", opts[i].key);
			rc = MOSQ_ERR_INVAL;
		}
		if(rc) return rc;
	}
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc) return rc;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	int i, k;

	(void)user_data;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	for(i = 0; i < rule_count; i++){
		free(rules[i].account);
		for(k = 0; k < rules[i].count; k++) free(rules[i].filters[k]);
	}
	rule_count = 0;
	return MOSQ_ERR_SUCCESS;
}
