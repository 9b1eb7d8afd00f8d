/** How a usage report sums ledger rows; a plain list the CLI reads without loading schemas. */
export const GROUPINGS = ['instance', 'day', 'kind'] as const;
