// keel alarm list|disarm: etcdctl's alarm commands, over the HTTP JSON gateway (/v3/maintenance/alarm).
// A NOSPACE alarm makes the members refuse writes that add data until it is disarmed.

import type { Argv } from 'yargs';
import type { AlarmMember, ResponseHeader } from '../kv/api';
import { alarmResponseToJson } from '../kv/gateway-json';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { alarmLine } from './etcdctl-simple';
import { withHttpClient } from './member-commands';

export async function alarmListCommand(ctx: CliContext, a: GlobalArgs): Promise<number> {
  return withHttpClient(a, async (client) => {
    const resp = await client.alarm({ action: 'GET' });
    if (a.json) ctx.printJson(alarmResponseToJson(resp));
    else ctx.printLines(resp.alarms.map(alarmLine));
    return 0;
  });
}

/** As etcd's Go client disarms "every alarm": lists them, then one DEACTIVATE per alarm listed; prints what
 *  the members report as deactivated. */
export async function alarmDisarmCommand(ctx: CliContext, a: GlobalArgs): Promise<number> {
  return withHttpClient(a, async (client) => {
    const listed = await client.alarm({ action: 'GET' });
    let header: ResponseHeader = listed.header;
    const disarmed: AlarmMember[] = [];
    for (const alarm of listed.alarms) {
      const resp = await client.alarm({ action: 'DEACTIVATE', memberId: alarm.memberId, alarm: alarm.alarm });
      header = resp.header;
      disarmed.push(...resp.alarms);
    }
    if (a.json) ctx.printJson(alarmResponseToJson({ header, alarms: disarmed }));
    else ctx.printLines(disarmed.map(alarmLine));
    return 0;
  });
}

export function registerAlarmCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command('alarm', 'Alarms raised by the members (NOSPACE: writes refused): list, disarm', (b) =>
    b
      .command(
        'list',
        'One line per alarm raised: memberID:<decimal id> alarm:<type>',
        (c) => c,
        (argv) => ctx.run(() => alarmListCommand(ctx, argv)),
      )
      .command(
        'disarm',
        'Disarm every alarm raised (prints each one disarmed)',
        (c) => c,
        (argv) => ctx.run(() => alarmDisarmCommand(ctx, argv)),
      )
      .demandCommand(1, "keel alarm needs a subcommand: 'list' or 'disarm'"),
  );
}
