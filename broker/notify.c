/* sd_notify's datagram, sent by hand; see notify.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/notify.h"

int sl_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t path_len;
	socklen_t addr_len;
	int fd, rc = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	path_len = strlen(path);
	/* systemd also speaks vsock (vsock:CID:PORT) to virtual machines' managers; a broker on a host needs only
	 * the two Unix forms. */
	if ((path[0] != '/' && path[0] != '@') || path_len >= sizeof(addr.sun_path))
		return -EAFNOSUPPORT;
	memcpy(addr.sun_path, path, path_len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract namespace: no NUL terminator, the length says where it ends */
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '/' ? 1 : 0));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
