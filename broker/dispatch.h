/* The one entry point from a front end into the handlers: a table from request kind to handler. The front end
 * decodes a request into req->msg and calls sl_dispatch; the handler answers through request.h. Checks shared by
 * every front end (Hello first on the native protocol, shutting down) happen here. */
#ifndef SL_BROKER_DISPATCH_H
#define SL_BROKER_DISPATCH_H

#include "broker/request.h"

void sl_dispatch(struct sl_req *req);

#endif
