// Cluster membership and alarms in the gateway's JSON (etcd 3.4's rpc.proto names: "ID", "peerURLs",
// "clientURLs", "isLearner", "memberID"; uint64 ids as decimal strings; enums by name), the checks of
// src/kv/validate.ts for them, and the HTTP status of ResourceExhausted (NOSPACE).

import t from 'tap';
import { Errors, GrpcCode, type KvError, type MemberInfo } from '../../src/kv/api';
import {
  alarmRequestToJson,
  alarmResponseToJson,
  codeFromHttpStatus,
  decodeAlarmResponse,
  decodeMemberAddResponse,
  decodeMemberListResponse,
  decodeMemberPromoteResponse,
  decodeMemberRemoveResponse,
  errorFromJson,
  errorToJson,
  httpStatusFromCode,
  memberAddRequestToJson,
  memberAddResponseToJson,
  memberIdRequestToJson,
  memberListRequestToJson,
  memberListResponseToJson,
  memberPromoteResponseToJson,
  memberRemoveResponseToJson,
  parseAlarmRequest,
  parseMemberAddRequest,
  parseMemberListRequest,
  parseMemberPromoteRequest,
  parseMemberRemoveRequest,
  streamErrorToJson,
} from '../../src/kv/gateway-json';
import {
  memberNameProblem,
  peerUrlProblem,
  validateAlarm,
  validateMemberAdd,
  validateMemberId,
} from '../../src/kv/validate';

const wire = (o: unknown): unknown => JSON.parse(JSON.stringify(o));
const header = { clusterId: 'ffffffffffffffff', memberId: '8e9e05c52164694d', revision: 4, raftTerm: 2 };
const HEADER_JSON = { cluster_id: '18446744073709551615', member_id: '10276657743932975437', revision: '4', raft_term: '2' };

const started: MemberInfo = {
  id: '8e9e05c52164694d',
  name: 'infra1',
  peerUrls: ['http://127.0.0.1:2380'],
  clientUrls: ['http://127.0.0.1:2379'],
  isLearner: false,
};
/** Added, not started: no name, no client URLs, a learner; its id has leading zeros. */
const learner: MemberInfo = {
  id: '00000000000004d2',
  name: '',
  peerUrls: ['http://127.0.0.1:2382'],
  clientUrls: [],
  isLearner: true,
};
const STARTED_JSON = {
  ID: '10276657743932975437',
  name: 'infra1',
  peerURLs: ['http://127.0.0.1:2380'],
  clientURLs: ['http://127.0.0.1:2379'],
};
const LEARNER_JSON = { ID: '1234', peerURLs: ['http://127.0.0.1:2382'], isLearner: true };

t.test('member list: etcd 3.4 gateway shape, defaults left out, round trip', async (t) => {
  const r = { header, members: [started, learner] };
  const json = memberListResponseToJson(r);
  t.equal(
    JSON.stringify(json),
    JSON.stringify({ header: HEADER_JSON, members: [STARTED_JSON, LEARNER_JSON] }),
    'field order and names as the gateway writes them; name "", isLearner false, [] left out',
  );
  t.same(decodeMemberListResponse(wire(json)), r);
  t.same(memberListResponseToJson({ header, members: [] }), { header: HEADER_JSON }, 'no members: left out');
  t.same(decodeMemberListResponse({ header: HEADER_JSON }), { header, members: [] });

  t.same(memberListRequestToJson({ linearizable: true }), { linearizable: true });
  t.same(memberListRequestToJson({ linearizable: false }), {});
  t.same(parseMemberListRequest({ linearizable: true }), { linearizable: true });
  t.same(parseMemberListRequest({ linearizable: false }), {});
  t.same(parseMemberListRequest(undefined), {}, 'no body: the empty request');
  t.throws(() => parseMemberListRequest({ linearizable: 'yes' }), { message: 'linearizable: expected true or false' });
  const unknown = t.throws(() => parseMemberListRequest({ serializable: true })) as KvError;
  t.equal(unknown.message, 'serializable: unknown field');
  t.equal(unknown.code, GrpcCode.InvalidArgument);
});

t.test('member add: request and response', async (t) => {
  t.same(memberAddRequestToJson({ peerUrls: ['http://10.0.0.4:2380'], isLearner: true, name: 'n4' }), {
    peerURLs: ['http://10.0.0.4:2380'],
    isLearner: true,
    name: 'n4',
  });
  t.same(memberAddRequestToJson({ peerUrls: ['http://10.0.0.4:2380'], isLearner: false, name: '' }), {
    peerURLs: ['http://10.0.0.4:2380'],
  });
  t.same(parseMemberAddRequest({ peerURLs: ['http://10.0.0.4:2380'], isLearner: true, name: 'n4' }), {
    peerUrls: ['http://10.0.0.4:2380'],
    isLearner: true,
    name: 'n4',
  });
  t.same(parseMemberAddRequest({ peerURLs: ['http://10.0.0.4:2380'], isLearner: false }), {
    peerUrls: ['http://10.0.0.4:2380'],
  });
  t.same(parseMemberAddRequest({}), { peerUrls: [] }, 'no URL: for validateMemberAdd to refuse');
  t.throws(() => parseMemberAddRequest({ peerURLs: 'http://10.0.0.4:2380' }), { message: 'peerURLs: expected a list' });
  t.throws(() => parseMemberAddRequest({ peerURLs: [2380] }), { message: 'peerURLs[0]: expected a string' });
  t.throws(() => parseMemberAddRequest({ peerURLs: [], isLearner: 1 }), { message: 'isLearner: expected true or false' });
  t.throws(() => parseMemberAddRequest({ peerURLs: [], name: 4 }), { message: 'name: expected a string' });
  t.throws(() => parseMemberAddRequest({ peer_urls: [] }), { message: 'peer_urls: unknown field' });
  t.throws(() => parseMemberAddRequest({ peerURLs: [], learner: true }), { message: 'learner: unknown field' });

  const r = { header, member: learner, members: [started, learner] };
  const json = memberAddResponseToJson(r);
  t.same(json, { header: HEADER_JSON, member: LEARNER_JSON, members: [STARTED_JSON, LEARNER_JSON] });
  t.same(decodeMemberAddResponse(wire(json)), r);
  t.throws(() => decodeMemberAddResponse({ header: HEADER_JSON }), { message: /member: missing/ });
});

t.test('member remove / promote: the ID as a decimal uint64, required', async (t) => {
  t.same(memberIdRequestToJson({ id: '8e9e05c52164694d' }), { ID: '10276657743932975437' });
  for (const parse of [parseMemberRemoveRequest, parseMemberPromoteRequest]) {
    t.same(parse({ ID: '10276657743932975437' }), { id: '8e9e05c52164694d' }, 'beyond 2^53, exact');
    t.same(parse({ ID: 1234 }), { id: '00000000000004d2' }, 'a JSON number is accepted');
    t.same(parse({ ID: '18446744073709551615' }), { id: 'ffffffffffffffff' }, 'the largest uint64');
    t.throws(() => parse({ ID: '18446744073709551616' }), { message: 'ID: expected a uint64 id as a decimal string' });
    t.throws(() => parse({ ID: '8e9e05c52164694d' }), { message: 'ID: expected a uint64 id as a decimal string' });
    t.throws(() => parse({ ID: '-1' }), { message: 'ID: expected a uint64 id as a decimal string' });
    t.throws(() => parse({ ID: true }), { message: 'ID: expected a uint64 id as a decimal string' });
    t.throws(() => parse({ ID: '0' }), { message: /^ID: a member id is required/ });
    t.throws(() => parse({}), { message: /^ID: a member id is required/ });
    t.throws(() => parse({ id: '1' }), { message: 'id: unknown field' });
  }
  const members = [started];
  for (const [toJson, decode] of [
    [memberRemoveResponseToJson, decodeMemberRemoveResponse],
    [memberPromoteResponseToJson, decodeMemberPromoteResponse],
  ] as const) {
    const json = toJson({ header, members });
    t.same(json, { header: HEADER_JSON, members: [STARTED_JSON] });
    t.same(decode(wire(json)), { header, members });
  }
});

t.test('alarm: enums by name or number, ids as decimal strings, empty list left out', async (t) => {
  t.same(alarmRequestToJson({ action: 'GET' }), {}, 'GET, member 0 and NONE are the defaults');
  t.same(alarmRequestToJson({ action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }), {
    action: 'DEACTIVATE',
    memberID: '10276657743932975437',
    alarm: 'NOSPACE',
  });
  t.same(parseAlarmRequest({}), { action: 'GET' });
  t.same(parseAlarmRequest({ action: 'GET', memberID: '0', alarm: 'NONE' }), { action: 'GET' });
  t.same(parseAlarmRequest({ action: 'ACTIVATE', memberID: '10276657743932975437', alarm: 'CORRUPT' }), {
    action: 'ACTIVATE',
    memberId: '8e9e05c52164694d',
    alarm: 'CORRUPT',
  });
  t.same(parseAlarmRequest({ action: 2, memberID: 1234, alarm: 1 }), {
    action: 'DEACTIVATE',
    memberId: '00000000000004d2',
    alarm: 'NOSPACE',
  }, 'enum numbers, as protobuf JSON accepts them');
  t.same(parseAlarmRequest({ action: 0 }), { action: 'GET' });
  t.throws(() => parseAlarmRequest({ action: 'RAISE' }), {
    message: 'action: unknown value "RAISE" (expected one of GET, ACTIVATE, DEACTIVATE, or 0-2)',
  });
  t.throws(() => parseAlarmRequest({ action: 3 }), { message: /^action: unknown value 3/ });
  t.throws(() => parseAlarmRequest({ alarm: 'nospace' }), { message: /^alarm: unknown value "nospace"/ });
  t.throws(() => parseAlarmRequest({ memberID: 'x' }), { message: 'memberID: expected a uint64 id as a decimal string' });
  t.throws(() => parseAlarmRequest({ member_id: '1' }), { message: 'member_id: unknown field' });

  const r = {
    header,
    alarms: [
      { memberId: '8e9e05c52164694d', alarm: 'NOSPACE' as const },
      { memberId: '00000000000004d2', alarm: 'CORRUPT' as const },
    ],
  };
  const json = alarmResponseToJson(r);
  t.equal(
    JSON.stringify(json),
    JSON.stringify({
      header: HEADER_JSON,
      alarms: [
        { memberID: '10276657743932975437', alarm: 'NOSPACE' },
        { memberID: '1234', alarm: 'CORRUPT' },
      ],
    }),
  );
  t.same(decodeAlarmResponse(wire(json)), r);
  t.same(alarmResponseToJson({ header, alarms: [] }), { header: HEADER_JSON }, 'no alarm: "alarms" left out');
  t.same(decodeAlarmResponse({ header: HEADER_JSON }), { header, alarms: [] });
  t.same(decodeAlarmResponse({ header: HEADER_JSON, alarms: [{ memberID: '1', alarm: 1 }] }).alarms, [
    { memberId: '0000000000000001', alarm: 'NOSPACE' },
  ]);
  t.throws(() => decodeAlarmResponse({ alarms: [{ alarm: 'FIRE' }] }), { message: /alarms\[0\]\.alarm: unknown value/ });
});

t.test('validateMemberAdd: one http://host:port peer URL, a printable name', async (t) => {
  const ok = (peerUrls: string[], more: { name?: string; isLearner?: boolean } = {}): void =>
    validateMemberAdd({ peerUrls, ...more });
  t.doesNotThrow(() => ok(['http://127.0.0.1:2380']));
  t.doesNotThrow(() => ok(['http://[::1]:2380'], { name: 'n4', isLearner: true }));
  t.doesNotThrow(() => ok(['http://node-4.example:2380'], { name: 'é-ü_4' }));
  t.doesNotThrow(() => ok(['http://127.0.0.1:2380'], { name: '' }), 'an empty name is no name');
  for (const bad of [
    [],
    ['http://127.0.0.1:2380', 'http://127.0.0.1:2382'],
    ['127.0.0.1:2380'],
    ['https://127.0.0.1:2380'],
    ['http://127.0.0.1'],
    ['http://127.0.0.1:0'],
    ['http://127.0.0.1:2380/'],
    ['http://127.0.0.1:2380/peer'],
    ['http://127.0.0.1:2380?x=1'],
    ['http://u:p@127.0.0.1:2380'],
    ['http://LOCALHOST:2380'],
    [''],
  ]) {
    const e = t.throws(() => ok(bad), `refused: ${JSON.stringify(bad)}`) as KvError;
    t.same([e.code, e.message], [GrpcCode.InvalidArgument, 'etcdserver: given member URLs are invalid']);
  }
  t.throws(() => validateMemberAdd({ peerUrls: [7 as unknown as string] }), Errors.memberBadUrls());
  for (const name of ['a b', 'a=b', 'a,b', 'tab\t', 'nl\n', 'x'.repeat(65), '\u0000']) {
    t.throws(() => ok(['http://127.0.0.1:2380'], { name }), { message: /^etcdserver: invalid member name / }, name);
  }
  t.doesNotThrow(() => ok(['http://127.0.0.1:2380'], { name: 'x'.repeat(64) }));
  t.doesNotThrow(() => ok(['http://127.0.0.1:2380'], { name: 'ü'.repeat(64) }), '64 characters, not bytes');
  t.equal(memberNameProblem('a b'), 'must be printable, without spaces');
  t.equal(peerUrlProblem('http://h:1/'), 'must be written http://h:1');
  t.equal(peerUrlProblem('http://h:1'), undefined);
});

t.test('validateMemberId and validateAlarm', async (t) => {
  t.doesNotThrow(() => validateMemberId({ id: '8e9e05c52164694d' }));
  t.throws(() => validateMemberId({ id: '' }), { message: 'etcdserver: invalid member ID (required: a member id, a non-zero uint64)' });
  for (const id of ['0000000000000000', '8e9e05c5216469', '8E9E05C52164694D', 'zzzzzzzzzzzzzzzz']) {
    t.throws(() => validateMemberId({ id }), { message: /^etcdserver: invalid member ID .* \(a member id is a non-zero uint64\)$/ }, id);
  }

  t.doesNotThrow(() => validateAlarm({ action: 'GET' }));
  t.doesNotThrow(() => validateAlarm({ action: 'GET', alarm: 'NOSPACE' }));
  t.doesNotThrow(() => validateAlarm({ action: 'DEACTIVATE' }), 'every alarm of every member');
  t.doesNotThrow(() => validateAlarm({ action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }));
  t.doesNotThrow(() => validateAlarm({ action: 'ACTIVATE', memberId: '8e9e05c52164694d', alarm: 'CORRUPT' }));
  t.throws(() => validateAlarm({ action: 'ACTIVATE', alarm: 'NOSPACE' }), {
    message: 'etcdserver: invalid alarm memberID (required: a member id, a non-zero uint64)',
  });
  t.throws(() => validateAlarm({ action: 'ACTIVATE', memberId: '8e9e05c52164694d' }), {
    message: /^etcdserver: invalid alarm NONE \(ACTIVATE needs the alarm to raise/,
  });
  t.throws(() => validateAlarm({ action: 'ACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NONE' }), {
    message: /^etcdserver: invalid alarm NONE/,
  });
  t.throws(() => validateAlarm({ action: 'RAISE' as 'GET' }), { message: /^etcdserver: invalid alarm action "RAISE"/ });
  t.throws(() => validateAlarm({ action: undefined as unknown as 'GET' }), { message: 'etcdserver: invalid alarm action (required)' });
  t.throws(() => validateAlarm({ action: 'GET', alarm: 'FIRE' as 'NONE' }), { message: /^etcdserver: invalid alarm "FIRE"/ });
  t.throws(() => validateAlarm({ action: 'GET', memberId: 'xyz' }), { message: /^etcdserver: invalid alarm memberID "xyz"/ });
});

t.test('ResourceExhausted (NOSPACE): HTTP 429, as grpc-gateway maps it', async (t) => {
  const e = Errors.noSpace();
  t.equal(httpStatusFromCode(e.code), 429);
  t.same(errorToJson(e.code, e.message), { error: e.message, code: 8, message: e.message });
  t.same(streamErrorToJson(e.code, e.message), {
    error: { grpc_code: 8, http_code: 429, message: 'etcdserver: mvcc: database space exceeded', http_status: 'Too Many Requests' },
  });
  const back = errorFromJson(429, errorToJson(e.code, e.message));
  t.same([back.code, back.message], [GrpcCode.ResourceExhausted, e.message], 'the client reads code 8 back');
  t.equal(codeFromHttpStatus(429), GrpcCode.ResourceExhausted);
  // Every error the membership and alarm changes bring has its status.
  const statuses = [
    Errors.memberExists(),
    Errors.peerUrlExists(),
    Errors.notEnoughStarted(),
    Errors.memberBadUrls(),
    Errors.memberNotFound(),
    Errors.memberNotLearner(),
    Errors.learnerNotReady(),
    Errors.reconfigRefused('one change at a time'),
    Errors.memberRemoved(),
    Errors.noSpace(),
  ].map((x) => httpStatusFromCode(x.code));
  // memberRemoved is Unavailable: a removed member serves nothing, so clients go to another one.
  t.same(statuses, [400, 400, 400, 400, 404, 400, 400, 400, 503, 429]);
});
