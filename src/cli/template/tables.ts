// Docker 20.10's list formats, as measured with its client: for each list command the header
// map (field -> column title), the default table format, and the Go type its errors name.
// Commands pass these to formatRows, so `strata images --format 'table {{.ID}}'` prints
// docker's "IMAGE ID" title and a bad field fails with docker's wording.

import type { HeaderValue, RowsOptions } from './index.js';

export type DockerTable = Omit<RowsOptions, 'command'> & { headers: Record<string, HeaderValue> };

/** docker's ps header for `{{.Label "a.b-c_d"}}`: the last dotted part, `-` and `_` as spaces. */
export function labelHeader(name: string): string {
  return (name.split('.').pop() as string).replace(/[-_]/g, ' ');
}

export const IMAGES_TABLE: DockerTable = {
  headers: {
    ID: 'IMAGE ID',
    Repository: 'REPOSITORY',
    Tag: 'TAG',
    Digest: 'DIGEST',
    CreatedSince: 'CREATED',
    CreatedAt: 'CREATED AT',
    Size: 'SIZE',
    Containers: 'CONTAINERS',
    SharedSize: 'SHARED SIZE',
    UniqueSize: 'UNIQUE SIZE',
    VirtualSize: 'SIZE',
  },
  defaultTable: 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}',
  typeName: '*formatter.imageContext',
};

/** `images --digests` adds the DIGEST column after TAG. */
export const IMAGES_DIGESTS_FORMAT = 'table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}';

export const PS_TABLE: DockerTable = {
  headers: {
    ID: 'CONTAINER ID',
    Image: 'IMAGE',
    Command: 'COMMAND',
    CreatedAt: 'CREATED AT',
    RunningFor: 'CREATED',
    Ports: 'PORTS',
    State: 'STATE',
    Status: 'STATUS',
    Size: 'SIZE',
    Names: 'NAMES',
    Labels: 'LABELS',
    Mounts: 'MOUNTS',
    LocalVolumes: 'LOCAL VOLUMES',
    Networks: 'NETWORKS',
    Label: labelHeader,
  },
  defaultTable: 'table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}',
  typeName: '*formatter.ContainerContext',
};

export const HISTORY_TABLE: DockerTable = {
  headers: {
    ID: 'IMAGE',
    CreatedSince: 'CREATED',
    CreatedAt: 'CREATED AT',
    CreatedBy: 'CREATED BY',
    Size: 'SIZE',
    Comment: 'COMMENT',
  },
  defaultTable: 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}',
  typeName: '*image.historyContext',
};

/** `history -H=false`: the RFC 3339 CREATED AT column instead of CREATED. */
export const HISTORY_NON_HUMAN_FORMAT = 'table {{.ID}}\\t{{.CreatedAt}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}';

const DF_TYPES: Record<string, string> = {
  Images: '*formatter.diskUsageImagesContext',
  Containers: '*formatter.diskUsageContainersContext',
  'Local Volumes': '*formatter.diskUsageVolumesContext',
  'Build Cache': '*formatter.diskUsageBuilderContext',
};

/** `system df`: one row per kind, each its own Go type in docker's errors. */
export const SYSTEM_DF_TABLE: DockerTable = {
  headers: {
    Type: 'TYPE',
    TotalCount: 'TOTAL',
    Active: 'ACTIVE',
    Size: 'SIZE',
    Reclaimable: 'RECLAIMABLE',
  },
  defaultTable: 'table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}',
  typeName: (row) => DF_TYPES[String(row.Type)] ?? '*formatter.diskUsageContext',
};
