import { useEffect, useState } from 'react';
import { ActivityIndicator, Pressable, StyleSheet, Text, View } from 'react-native';

import type { SearchSummary } from '../api/types';
import { Button } from '../components/Button';
import { ProblemPanel } from '../components/ProblemPanel';
import { Screen } from '../components/Screen';
import { TOUCH, useTheme } from '../components/theme';
import { useHistory } from '../hooks/useHistory';
import { useSearchDetail } from '../hooks/useSearchDetail';
import { ResultsView } from './ResultsView';

function when(value: string | number): string {
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function summary(item: SearchSummary): string {
  if (item.no_match) return 'No reliable match';
  if (item.top_match) return `Best match: ${item.top_match.name}`;
  return 'Search';
}

/** Past searches, newest first; each reopens its results. */
export function HistoryScreen() {
  const theme = useTheme();
  const { items, loading, error, refresh, loadMore, hasMore } = useHistory();
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    if (open === null) void refresh();
  }, [open, refresh]);

  if (open !== null) {
    return <SearchDetail searchId={open} onBack={() => setOpen(null)} />;
  }
  return (
    <Screen title="History">
      <Button title="Refresh" kind="secondary" label="Refresh the history" busy={loading} onPress={refresh} />
      {error ? <ProblemPanel error={error} onRetry={refresh} /> : null}
      {!loading && !error && items.length === 0 ? (
        <Text style={{ color: theme.muted }}>No searches yet.</Text>
      ) : null}
      {items.map((item) => (
        <Pressable
          key={item.search_id}
          testID={`history-${item.search_id}`}
          accessibilityRole="button"
          accessibilityLabel={`${summary(item)}, ${when(item.created_at)}. Open results`}
          onPress={() => setOpen(item.search_id)}
          style={[styles.item, { backgroundColor: theme.card, borderColor: theme.border }]}
        >
          <Text style={[styles.title, { color: theme.text }]}>{summary(item)}</Text>
          <Text style={{ color: theme.muted }}>{when(item.created_at)}</Text>
        </Pressable>
      ))}
      {hasMore && items.length > 0 ? (
        <Button title="Load more" kind="secondary" busy={loading} onPress={loadMore} />
      ) : null}
    </Screen>
  );
}

function SearchDetail({ searchId, onBack }: { searchId: string; onBack: () => void }) {
  const { result, error, retry } = useSearchDetail(searchId);
  return (
    <Screen title="Search results">
      <Button title="Back to history" kind="secondary" onPress={onBack} />
      {error ? <ProblemPanel error={error} onRetry={retry} /> : null}
      {!result && !error ? <ActivityIndicator accessibilityLabel="Loading the search" /> : null}
      {result ? <ResultsView result={result} /> : null}
    </Screen>
  );
}

const styles = StyleSheet.create({
  item: { borderWidth: 1, borderRadius: 12, padding: 12, minHeight: TOUCH, gap: 2 },
  title: { fontSize: 17, fontWeight: '700' },
});
