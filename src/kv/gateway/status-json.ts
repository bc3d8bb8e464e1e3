// Maintenance status and /health in the gateway's JSON.

import type { HealthResponse, StatusResponse } from '../api';
import { Fields, compact, flag, idToJson, int64 } from './fields';
import { decodeHeader, headerToJson, type HeaderJson } from './kv-json';

/** StatusResponse's .proto fields are camelCase, so the gateway writes them so (dbSize, raftIndex). */
export interface StatusResponseJson {
  header: HeaderJson;
  version?: string;
  dbSize?: string;
  leader?: string;
  raftIndex?: string;
  raftTerm?: string;
  raftAppliedIndex?: string;
  errors?: string[];
  isLearner?: boolean;
  /** Keel's additions. */
  snapshotIndex?: string;
  firstIndex?: string;
  name?: string;
}

/** etcd's /health body (plain Go JSON, not protobuf: both fields always present, health a string). */
export interface HealthJson {
  health: 'true' | 'false';
  reason: string;
}

export function statusResponseToJson(r: StatusResponse): StatusResponseJson {
  return compact({
    header: headerToJson(r.header),
    version: r.version === '' ? undefined : r.version,
    dbSize: int64(r.dbSize),
    leader: idToJson(r.leader),
    raftIndex: int64(r.raftIndex),
    raftTerm: int64(r.raftTerm),
    raftAppliedIndex: int64(r.raftAppliedIndex),
    errors: r.errors.length === 0 ? undefined : [...r.errors],
    isLearner: flag(r.isLearner),
    snapshotIndex: int64(r.snapshotIndex),
    firstIndex: int64(r.firstIndex),
    name: r.name === '' ? undefined : r.name,
  });
}

export function healthToJson(h: HealthResponse): HealthJson {
  return { health: h.health ? 'true' : 'false', reason: h.reason };
}

/** StatusRequest has no fields. */
export function parseStatusRequest(body: unknown): void {
  Fields.request(body, '', []);
}


export function decodeStatusResponse(json: unknown): StatusResponse {
  const f = Fields.response(json, '');
  return {
    header: decodeHeader(f.obj('header')),
    version: f.str('version') ?? '',
    dbSize: f.int('dbSize') ?? 0,
    leader: f.id('leader'),
    raftIndex: f.uint('raftIndex') ?? 0,
    raftTerm: f.uint('raftTerm') ?? 0,
    raftAppliedIndex: f.uint('raftAppliedIndex') ?? 0,
    snapshotIndex: f.uint('snapshotIndex') ?? 0,
    firstIndex: f.uint('firstIndex') ?? 0,
    isLearner: f.bool('isLearner') ?? false,
    errors: f.list('errors').map((e, i) => {
      if (typeof e !== 'string') throw f.fail(`errors[${i}]: expected a string`);
      return e;
    }),
    name: f.str('name') ?? '',
  };
}

export function decodeHealthResponse(json: unknown): HealthResponse {
  const f = Fields.response(json, '');
  const h = f.str('health');
  if (h !== 'true' && h !== 'false') throw f.fail('health: expected "true" or "false"');
  return { health: h === 'true', reason: f.str('reason') ?? '' };
}
