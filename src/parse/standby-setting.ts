/** Whether a `dev parse` starts the next run's harness ahead (standby.ts); apart so that deciding loads nothing. */

/** At a terminal (a person iterating) outside CI; ASTRO_PARSE_STANDBY=1 or 0 decides instead. */
export function wantsStandby(input: { setting: string | undefined; ci: boolean; interactive: boolean }): boolean {
  const setting = input.setting?.trim().toLowerCase();
  if (setting === '0' || setting === 'false' || setting === 'no' || setting === 'off') return false;
  if (setting === '1' || setting === 'true' || setting === 'yes' || setting === 'on') return true;
  return input.interactive && !input.ci;
}
