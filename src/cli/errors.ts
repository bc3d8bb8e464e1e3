// Errors the CLI turns into exit codes: a UsageError exits 2 (like yargs' own usage errors), any other
// Error exits 1.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
