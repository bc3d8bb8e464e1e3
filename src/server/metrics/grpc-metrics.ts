// go-grpc-prometheus's server metrics, which etcd registers for its gRPC server: grpc_server_started_total,
// grpc_server_handled_total and grpc_server_handling_seconds (the last only with etcd's --metrics extensive;
// Keel always has it, so that the etcd mixin's "gRPC requests slow" alert works). Names, help texts, labels
// and buckets are go-grpc-prometheus's.

import { performance } from 'node:perf_hooks';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { GrpcCode } from '../../kv/api';
import type { CallEnd, RpcObserver } from './rpc-observer';
import { RPCS, grpcCodeName, type RpcName } from './rpc-names';

type CallLabel = 'grpc_type' | 'grpc_service' | 'grpc_method';

/** Prometheus client_golang's DefBuckets, go-grpc-prometheus's default for the handling time. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class GrpcServerMetrics implements RpcObserver {
  private readonly started: Counter<CallLabel>;
  private readonly handled: Counter<CallLabel | 'grpc_code'>;
  private readonly handling: Histogram<CallLabel>;
  /** One label object per method ("service/method"), made once: calls are the hot path. */
  private readonly labels = new Map<string, Record<CallLabel, string>>();

  constructor(registry: Registry) {
    const labelNames: CallLabel[] = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.started = new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames,
      registers: [registry],
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...labelNames, 'grpc_code'],
      registers: [registry],
    });
    this.handling = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames,
      buckets: DEFAULT_BUCKETS,
      registers: [registry],
    });
    // As go-grpc-prometheus's Register(server): every method shows from the start, at zero, so that rates
    // and "started - handled" are defined before the first call.
    for (const rpc of Object.values(RPCS)) {
      const labels = this.labelsOf(rpc);
      this.started.inc(labels, 0);
      this.handled.inc({ ...labels, grpc_code: 'OK' }, 0);
    }
  }

  begin(rpc: RpcName): CallEnd {
    const labels = this.labelsOf(rpc);
    this.started.inc(labels);
    const t0 = performance.now();
    let ended = false;
    return (code: GrpcCode) => {
      if (ended) return;
      ended = true;
      this.handled.inc({ ...labels, grpc_code: grpcCodeName(code) });
      this.handling.observe(labels, (performance.now() - t0) / 1000);
    };
  }

  private labelsOf(rpc: RpcName): Record<CallLabel, string> {
    const key = `${rpc.service}/${rpc.method}`;
    let labels = this.labels.get(key);
    if (labels === undefined) {
      labels = { grpc_type: rpc.type, grpc_service: rpc.service, grpc_method: rpc.method };
      this.labels.set(key, labels);
    }
    return labels;
  }
}
