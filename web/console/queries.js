// The GraphQL documents the console sends (names as in DESIGN §3.3).

const RUN_FIELDS = `
  fragment RunFields on SyncRun {
    id syncId status phase trigger dryRun fullResync createdAt startedAt finishedAt
    querySize invalid unchanged progress
    planned { add update remove }
    succeeded { add update remove }
    failed { add update remove }
    error { code message }
  }`;

export const VIEWER = `
  query Viewer {
    viewer { role account { email name } workspace { id name slug } }
  }`;

export const SYNCS = `
  query Syncs($workspaceId: ID!) {
    audienceSyncs(workspaceId: $workspaceId, first: 100) {
      totalCount
      edges {
        node {
          id name status syncMode schedule lastSyncedAt
          audience { name }
          destination { name type }
          runs(first: 1) { edges { node { ...RunFields } } }
        }
      }
    }
  }
  ${RUN_FIELDS}`;

export const RUN = `
  query Run($id: ID!) { syncRun(id: $id) { ...RunFields } }
  ${RUN_FIELDS}`;

export const TRIGGER = `
  mutation Trigger($id: ID!) { triggerAudienceSync(id: $id) { ...RunFields } }
  ${RUN_FIELDS}`;

export const CANCEL = `
  mutation Cancel($id: ID!) { cancelSyncRun(id: $id) { ...RunFields } }
  ${RUN_FIELDS}`;

export const WORKSPACE_RUNS = `
  subscription WorkspaceRuns($workspaceId: ID!) {
    workspaceRunUpdates(workspaceId: $workspaceId) { ...RunFields }
  }
  ${RUN_FIELDS}`;

export const RUN_EVENTS = `
  subscription RunEvents($runId: ID!, $after: Int) {
    syncRunEvents(runId: $runId, after: $after) { seq type payload at }
  }`;
