/**
 * The OpenAPI 3.1 document of the daemon's local API, served at
 * GET /openapi.json. Written by hand; a test checks that it lists exactly the
 * routes the server answers (api.ts ROUTES).
 */

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object): { content: { 'application/json': { schema: object } } } => ({ content: { 'application/json': { schema } } });
const errors = {
  '400': { description: 'Bad request: the field is named; nothing changed', ...json(ref('Error')) },
  '404': { description: 'No such object', ...json(ref('Error')) },
  '409': { description: 'The object belongs to another source (config file or OVN)', ...json(ref('Error')) },
  '500': { description: 'The data plane refused the state; the previous state is still served', ...json(ref('Error')) },
};
const written = { '200': { description: 'Accepted, validated and served', ...json(ref('WriteResult')) }, ...errors };
const pathParam = (name: string, description: string): object => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const NAME = pathParam('name', 'object name (OVN `name`)');
const VIP = pathParam('vip', 'VIP as `IP:PORT` or `IP` (URL-encoded)');
const LB = pathParam('lb', 'load balancer name');

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'xlb daemon local API',
    version: '1',
    description:
      'Programmatic updates of the load balancers xlb serves. Objects use the config-file shape (OVN Northbound names). ' +
      'Sources are merged by name with precedence api > file > ovn. Every write is validated against the merged state and ' +
      'applied before it is answered; a bad request changes nothing. Served on a unix socket (0600) and optionally on a ' +
      'loopback TCP port that requires `Authorization: Bearer TOKEN`.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'TCP listener only' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'field', 'message'],
            properties: {
              code: { type: 'string', examples: ['XLB_CONFIG'] },
              field: { type: ['string', 'null'], description: 'the offending field: a body path, a path parameter, or a merged-state path' },
              message: { type: 'string' },
            },
          },
        },
      },
      WriteResult: {
        type: 'object',
        properties: {
          ok: { const: true },
          apply: {
            type: 'object',
            properties: { writes: { type: 'integer' }, unchanged: { type: 'boolean' }, durationMs: { type: 'number' } },
          },
        },
      },
      LoadBalancer: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string', description: 'optional in PUT; must equal the path name' },
          protocol: { enum: ['tcp', 'udp', 'sctp'], default: 'tcp' },
          vips: { type: 'object', additionalProperties: { type: 'string' }, description: '"IP:PORT" or "IP" → "ip:port,ip:port"' },
          options: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
          selection_fields: { type: 'array', items: { type: 'string' } },
        },
      },
      LogicalSwitch: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          ports: {
            type: 'array',
            items: {
              oneOf: [
                { type: 'string', description: 'IFNAME or NETNS/IFNAME' },
                { type: 'object', properties: { interface: { type: 'string' }, hook: { enum: ['auto', 'tc', 'xdp', 'xdp-generic'] } }, required: ['interface'] },
              ],
            },
          },
          load_balancer: { type: 'array', items: { type: 'string' } },
        },
      },
      VipBackends: {
        type: 'object',
        additionalProperties: false,
        required: ['backends'],
        properties: {
          backends: { type: 'string', examples: ['172.16.255.130:8000,172.16.255.131:8000'] },
          protocol: { enum: ['tcp', 'udp', 'sctp'], description: 'used when the load balancer is created; must match an existing one' },
        },
      },
      State: {
        type: 'object',
        properties: {
          desired: { type: 'object', description: 'the merged, validated desired state (normalized)' },
          sources: { type: 'object', description: 'table → object name → source (api, file, ovn)' },
          precedence: { type: 'array', items: { enum: ['api', 'file', 'ovn'] } },
        },
      },
    },
  },
  security: [{}, { bearer: [] }],
  paths: {
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok', ...json({ type: 'object' }) } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } } },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        description: 'Per-VIP and per-backend packets/bytes/new connections/drops, conntrack entries and capacity, apply count/errors/latency.',
        responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/v1/state': { get: { summary: 'Merged desired state and the source of each object', responses: { '200': { description: 'state', ...json(ref('State')) } } } },
    '/v1/stats': {
      get: {
        summary: '`xlb show` as JSON (counters as numbers) plus the daemon: applies, errors, last apply summary',
        responses: { '200': { description: 'stats', ...json({ type: 'object' }) } },
      },
    },
    '/v1/load-balancers': {
      get: { summary: 'Load balancers being served, each with its source', responses: { '200': { description: 'list', ...json({ type: 'object' }) } } },
    },
    '/v1/load-balancers/{name}': {
      parameters: [NAME],
      get: { summary: 'One load balancer', responses: { '200': { description: 'the load balancer', ...json(ref('LoadBalancer')) }, '404': errors['404'] } },
      put: { summary: 'Create or replace a load balancer (API source)', requestBody: { required: true, ...json(ref('LoadBalancer')) }, responses: written },
      delete: {
        summary: 'Delete a load balancer of the API source (API switches drop their references to it)',
        responses: written,
      },
    },
    '/v1/load-balancers/{name}/vips/{vip}': {
      parameters: [NAME, VIP],
      put: {
        summary: "Set a VIP's backends (creates the load balancer if needed; like `ovn-nbctl lb-add`)",
        requestBody: { required: true, ...json(ref('VipBackends')) },
        responses: written,
      },
      delete: { summary: 'Remove a VIP from a load balancer', responses: written },
    },
    '/v1/logical-switches': {
      get: { summary: 'Logical switches being served, each with its source', responses: { '200': { description: 'list', ...json({ type: 'object' }) } } },
    },
    '/v1/logical-switches/{name}': {
      parameters: [NAME],
      get: { summary: 'One logical switch', responses: { '200': { description: 'the switch', ...json(ref('LogicalSwitch')) }, '404': errors['404'] } },
      put: { summary: 'Create or replace a logical switch (API source)', requestBody: { required: true, ...json(ref('LogicalSwitch')) }, responses: written },
      delete: { summary: 'Delete a logical switch of the API source', responses: written },
    },
    '/v1/logical-switches/{name}/load-balancers': {
      parameters: [NAME],
      delete: { summary: 'Detach every load balancer from a switch (`ls-lb-del SWITCH`)', responses: written },
    },
    '/v1/logical-switches/{name}/load-balancers/{lb}': {
      parameters: [NAME, LB],
      post: {
        summary: 'Attach a load balancer to an existing switch (`ls-lb-add`); a switch of another source is copied into the API source',
        responses: written,
      },
      delete: { summary: 'Detach a load balancer from a switch (`ls-lb-del`)', responses: written },
    },
  },
} as const;
