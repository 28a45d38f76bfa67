/* Readiness for service managers: systemd's notify protocol (sd_notify(3)) without libsystemd. A unit with
 * Type=notify (tools/synclogd.service) sets $NOTIFY_SOCKET; the broker sends "READY=1" once it accepts
 * connections and "STOPPING=1" when a signal starts the shutdown, so `systemctl start` returns only when clients
 * can connect and `systemctl status` says what the broker is doing. */
#ifndef SL_BROKER_NOTIFY_H
#define SL_BROKER_NOTIFY_H

/* Send state (lines such as "READY=1\nSTATUS=...") as one datagram to $NOTIFY_SOCKET: a path, or an abstract
 * socket when it starts with '@'. Returns 0 (also when the variable is unset: nobody is listening), or a negative
 * errno when the socket cannot be reached. One non-blocking sendto: safe on the event loop. */
int sl_notify(const char *state);

#endif
