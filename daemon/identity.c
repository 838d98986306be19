/* identity.c - the caller's identity from peer credentials and the
 * configuration: never from anything the client sends. */
#include "daemon.h"
#include "util.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>

static int in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

int identity_resolve(struct identity *id, const struct lb_config *cfg)
{
	char buf[16384];
	struct passwd pw, *pwp = NULL;
	gid_t groups[256];
	int ngroups = (int)LB_ARRAY_SIZE(groups);
	getpwuid_r(id->uid, &pw, buf, sizeof(buf), &pwp);
	if (pwp)
		snprintf(id->name, sizeof(id->name), "%s", pwp->pw_name);
	else
		snprintf(id->name, sizeof(id->name), "uid%u", (unsigned)id->uid);
	if (id->ngroups > 0) {
		/* The groups the kernel says the peer process has (SO_PEERGROUPS). */
		ngroups = LB_MIN(id->ngroups, (int)LB_ARRAY_SIZE(groups));
		memcpy(groups, id->groups, (size_t)ngroups * sizeof(gid_t));
	} else if (pwp) {
		if (getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &ngroups) < 0)
			ngroups = (int)LB_ARRAY_SIZE(groups);
	} else {
		groups[0] = id->gid;
		ngroups = 1;
	}
	char *gnames[256];
	int ng = 0;
	for (int i = 0; i < ngroups && ng < 256; i++) {
		char gbuf[16384];
		struct group gr, *grp = NULL;
		getgrgid_r(groups[i], &gr, gbuf, sizeof(gbuf), &grp);
		if (grp && (gnames[ng] = strdup(grp->gr_name)))
			ng++;
	}
	id->admin = id->uid == 0;
	if (cfg->daemon.admin_group && in_list(gnames, (size_t)ng, cfg->daemon.admin_group))
		id->admin = 1;
	int r = 0;
	for (size_t t = 0; t < cfg->ntenants && r == 0; t++) {
		const struct lb_tenant_cfg *tc = &cfg->tenants[t];
		int member = pwp && in_list(tc->users, tc->nusers, id->name);
		for (int g = 0; !member && g < ng; g++)
			member = in_list(tc->groups, tc->ngroups, gnames[g]);
		if (!member && !id->admin)
			continue;
		char **nt = lb_reallocarray(id->tenants, id->ntenants + 1, sizeof(char *));
		if (!nt || !(nt[id->ntenants] = strdup(tc->id))) {
			if (nt)
				id->tenants = nt;
			r = -ENOMEM;
			break;
		}
		id->tenants = nt;
		id->ntenants++;
	}
	for (int i = 0; i < ng; i++)
		free(gnames[i]);
	return r;
}

void identity_clear(struct identity *id)
{
	for (size_t i = 0; i < id->ntenants; i++)
		free(id->tenants[i]);
	free(id->tenants);
	id->tenants = NULL;
	id->ntenants = 0;
}

int identity_may(const struct identity *id, const char *tenant)
{
	return in_list(id->tenants, id->ntenants, tenant);
}
