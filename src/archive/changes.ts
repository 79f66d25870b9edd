// Change lists between layers, as `docker diff` prints them.

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  /** Absolute path inside the container root, e.g. "/etc/passwd". */
  path: string;
  kind: ChangeKind;
}
